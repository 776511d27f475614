//! Change notices for live pages: after a webhook request is acknowledged, the ids of the
//! metrics it wrote are handed to whoever listens to that project (the event stream of an
//! open dashboard or metric page). A notice carries no samples: a page refetches what it
//! shows, through the normal read path, which waits for the applier. With nobody listening,
//! the webhook pays one atomic load.

use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One listener's metricIds changed since it last took them.
#[derive(Default)]
pub struct Listener {
    changed: Mutex<BTreeSet<String>>,
    pub notify: tokio::sync::Notify,
}

impl Listener {
    /// Takes the metricIds changed since the last call.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.changed.lock())
    }
}

#[derive(Default)]
pub struct ChangeFeed {
    listeners: RwLock<HashMap<String, Vec<Arc<Listener>>>>,
    count: AtomicUsize,
}

/// A registered listener; dropping it unregisters.
pub struct Subscription {
    feed: Arc<ChangeFeed>,
    project: String,
    pub listener: Arc<Listener>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut all = self.feed.listeners.write();
        if let Some(list) = all.get_mut(&self.project) {
            list.retain(|l| !Arc::ptr_eq(l, &self.listener));
            if list.is_empty() {
                all.remove(&self.project);
            }
        }
        self.feed.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ChangeFeed {
    /// Whether anyone listens to `project` (cheap when nobody listens anywhere).
    pub fn listening(&self, project: &str) -> bool {
        self.count.load(Ordering::Relaxed) > 0 && self.listeners.read().contains_key(project)
    }

    pub fn publish<'a>(&self, project: &str, metric_ids: impl Iterator<Item = &'a str> + Clone) {
        let all = self.listeners.read();
        for l in all.get(project).into_iter().flatten() {
            l.changed
                .lock()
                .extend(metric_ids.clone().map(str::to_owned));
            l.notify.notify_one();
        }
    }

    pub fn subscribe(self: &Arc<Self>, project: &str) -> Subscription {
        let listener = Arc::new(Listener::default());
        self.listeners
            .write()
            .entry(project.to_owned())
            .or_default()
            .push(listener.clone());
        self.count.fetch_add(1, Ordering::Relaxed);
        Subscription {
            feed: self.clone(),
            project: project.to_owned(),
            listener,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_gets_its_projects_changes_until_dropped() {
        let feed = Arc::new(ChangeFeed::default());
        assert!(!feed.listening("p1"));
        let sub = feed.subscribe("p1");
        assert!(feed.listening("p1"));
        assert!(!feed.listening("p2"));
        feed.publish("p1", ["a", "b", "a"].into_iter());
        feed.publish("p2", ["c"].into_iter());
        let got: Vec<String> = sub.listener.take().into_iter().collect();
        assert_eq!(got, ["a", "b"]);
        assert!(sub.listener.take().is_empty());
        drop(sub);
        assert!(!feed.listening("p1"));
    }
}
