//! Change notices for live pages: after a webhook request is acknowledged, the ids of the
//! metrics it wrote are recorded for its project, if anyone listens to that project (the
//! event stream of an open dashboard or metric page). A notice carries no samples: a page
//! refetches what it shows through the normal read path, which waits for the applier.
//!
//! The cost on the webhook does not grow with the listeners: a request stamps each of its
//! metricIds with the project's next generation in one map (allocating only for an id not
//! seen before) and wakes every listener at once; each listener then collects the ids newer
//! than the generation it last saw, at its own pace. With nobody listening anywhere, the
//! webhook pays one atomic load.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// One project's changes while it has listeners.
#[derive(Default)]
pub struct ProjectFeed {
    /// metricId → the generation it last changed at.
    changed: Mutex<HashMap<String, u64>>,
    generation: AtomicU64,
    /// Woken (all waiters) at every publish.
    pub notify: tokio::sync::Notify,
    listeners: AtomicUsize,
}

impl ProjectFeed {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The metricIds changed after generation `seen`, sorted, and the generation they reach.
    pub fn changed_since(&self, seen: u64) -> (Vec<String>, u64) {
        let now = self.generation();
        let map = self.changed.lock();
        let mut ids: Vec<String> = map
            .iter()
            .filter(|(_, &g)| g > seen)
            .map(|(id, _)| id.clone())
            .collect();
        drop(map);
        ids.sort_unstable();
        (ids, now)
    }
}

#[derive(Default)]
pub struct ChangeFeed {
    projects: RwLock<HashMap<String, Arc<ProjectFeed>>>,
    /// Listeners over all projects: the webhook's one check when there are none.
    listeners: AtomicUsize,
}

/// A registered listener; dropping it unregisters (and the project's feed goes with its
/// last listener).
pub struct Subscription {
    feed: Arc<ChangeFeed>,
    project: String,
    pub project_feed: Arc<ProjectFeed>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut all = self.feed.projects.write();
        if self.project_feed.listeners.fetch_sub(1, Ordering::AcqRel) == 1 {
            all.remove(&self.project);
        }
        self.feed.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ChangeFeed {
    /// Whether anyone listens to `project` (one atomic load when nobody listens anywhere).
    pub fn listening(&self, project: &str) -> bool {
        self.listeners.load(Ordering::Relaxed) > 0 && self.projects.read().contains_key(project)
    }

    pub fn publish<'a>(&self, project: &str, metric_ids: impl Iterator<Item = &'a str>) {
        let Some(feed) = self.projects.read().get(project).cloned() else {
            return;
        };
        {
            let mut map = feed.changed.lock();
            let generation = feed.generation.load(Ordering::Relaxed) + 1;
            for id in metric_ids {
                match map.get_mut(id) {
                    Some(g) => *g = generation,
                    None => {
                        map.insert(id.to_owned(), generation);
                    }
                }
            }
            // Under the map's lock, so a listener that reads this generation finds its ids.
            feed.generation.store(generation, Ordering::Release);
        }
        feed.notify.notify_waiters();
    }

    pub fn subscribe(self: &Arc<Self>, project: &str) -> Subscription {
        let mut all = self.projects.write();
        let project_feed = all.entry(project.to_owned()).or_default().clone();
        project_feed.listeners.fetch_add(1, Ordering::AcqRel);
        drop(all);
        self.listeners.fetch_add(1, Ordering::Relaxed);
        Subscription {
            feed: self.clone(),
            project: project.to_owned(),
            project_feed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_see_the_changes_after_their_generation_until_dropped() {
        let feed = Arc::new(ChangeFeed::default());
        assert!(!feed.listening("p1"));
        let a = feed.subscribe("p1");
        let b = feed.subscribe("p1");
        assert!(feed.listening("p1"));
        assert!(!feed.listening("p2"));
        feed.publish("p1", ["b", "a", "a"].into_iter());
        feed.publish("p2", ["c"].into_iter());
        let (ids, seen) = a.project_feed.changed_since(0);
        assert_eq!((ids, seen), (vec!["a".to_owned(), "b".to_owned()], 1));
        feed.publish("p1", ["b"].into_iter());
        assert_eq!(a.project_feed.changed_since(seen).0, ["b"]);
        assert_eq!(
            b.project_feed.changed_since(0).0,
            ["a", "b"],
            "each at its own pace"
        );
        drop(a);
        assert!(feed.listening("p1"));
        drop(b);
        assert!(!feed.listening("p1"));
        let c = feed.subscribe("p1");
        assert!(
            c.project_feed.changed_since(0).0.is_empty(),
            "a new feed starts empty"
        );
    }
}
