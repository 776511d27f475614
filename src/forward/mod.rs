//! The forwarder: sends every acknowledged sample to remote-write targets (VictoriaMetrics,
//! Mimir, Thanos, Cortex, Prometheus), at least once, never in the ingest path. It reads the
//! journal (the durable record of every 200) from one cursor per target, kept in the store
//! and committed only after the target's 2xx; the journal keeps a generation's file until
//! every target has passed it (`journal::Journal::hold_from`), so a restart resumes where
//! the target last answered. Each target has its own thread (`send.rs`): a slow or dead one
//! holds no other back. A refused batch (4xx other than 429) becomes a dead letter in the
//! store. The backlog is bounded: past `max_backlog` bytes of held journal files, the
//! oldest generation is released, counted and logged (its samples stay in stathook).
//! Touches the journal (read, hold), the store (its two tables) and the network; nothing of
//! HTTP serving.

pub mod batch;
mod send;
pub mod target;

use crate::journal::{Journal, Position};
use crate::store::Store;
use batch::Next;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
pub use target::{parse_targets, Target};

/// Samples in one remote-write request, as Prometheus sends at most (2.43+ default).
pub const MAX_BATCH_SAMPLES: usize = 2_000;
/// Bytes of one request before compression, about.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

#[derive(Clone, Debug)]
pub struct ForwardConfig {
    pub targets: Vec<Target>,
    /// Bytes of sealed journal files kept only for lagging targets before the oldest is
    /// released.
    pub max_backlog_bytes: u64,
    pub max_batch_samples: usize,
    pub max_batch_bytes: usize,
}

/// A target's durable state (`store::FORWARD_CURSORS`, JSON, version 1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    pub v: u32,
    /// Everything before this was answered 2xx (or dead-lettered, or released).
    pub next: Next,
    pub sent_samples: u64,
    pub dead_letters: u64,
    pub released_samples: u64,
}

impl Cursor {
    fn at(generation: u64) -> Cursor {
        Cursor {
            v: 1,
            next: Next {
                at: Position::start_of(generation),
                skip: 0,
            },
            sent_samples: 0,
            dead_letters: 0,
            released_samples: 0,
        }
    }
}

/// What `GET /api/v1/admin/forward` shows of one target.
#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub url: String,
    /// The committed cursor: generation and offset.
    pub cursor_generation: u64,
    pub cursor_offset: u64,
    pub lag_samples: u64,
    /// Seconds since the target was last caught up (0 when it is).
    pub lag_seconds: f64,
    pub sent_samples: u64,
    pub sent_batches: u64,
    pub retries: u64,
    pub dead_letters: u64,
    pub released_samples: u64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

/// A target's state shared between its thread, the backlog check and the status API.
struct Shared {
    target: Target,
    status: Mutex<TargetStatus>,
    /// The committed cursor's generation: files below the smallest of these may go.
    committed_generation: AtomicU64,
    /// Set by the backlog check: skip every generation below this.
    release_below: AtomicU64,
    /// The journal's acknowledged-sample count up to which the target has everything: set
    /// when it is caught up, raised by each batch sent, negative at start by the backlog
    /// found then. The lag in samples is the acknowledged count minus this.
    forwarded_mark: AtomicI64,
    behind_since_ms: AtomicU64,
}

pub struct Forwarder {
    targets: Vec<Arc<Shared>>,
    journal: Arc<Journal>,
    stop: tokio::sync::watch::Sender<bool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    outbound: crate::outbound::Outbound,
    store: Arc<Store>,
}

/// The generation from which the journal must keep its files for `targets`, read before
/// the journal opens (so recovery does not delete what a target still needs): the smallest
/// committed cursor, 0 when a target has none yet (it starts at the oldest file), and
/// `u64::MAX` when nothing forwards.
pub fn keep_from(store: &Store, targets: &[Target]) -> Result<u64, String> {
    if targets.is_empty() {
        return Ok(u64::MAX);
    }
    let cursors: Vec<(String, Cursor)> = store
        .forward_cursors()
        .map_err(|e| format!("read the forward cursors: {e}"))?;
    Ok(targets
        .iter()
        .map(|t| {
            cursors
                .iter()
                .find(|(id, _)| id == t.id())
                .map_or(0, |(_, c)| c.next.at.generation)
        })
        .min()
        .unwrap_or(u64::MAX))
}

impl Forwarder {
    /// Starts one thread per target and the backlog check.
    pub fn start(
        config: ForwardConfig,
        journal: Arc<Journal>,
        store: Arc<Store>,
    ) -> Result<Arc<Forwarder>, String> {
        let allow: Vec<String> = config.targets.iter().map(|t| t.host.clone()).collect();
        let outbound =
            crate::outbound::Outbound::new(crate::outbound::guard::AllowList::parse(&allow)?);
        let stored: Vec<(String, Cursor)> = store
            .forward_cursors()
            .map_err(|e| format!("read the forward cursors: {e}"))?;
        let oldest = journal
            .generations()
            .map_err(|e| e.to_string())?
            .first()
            .copied()
            .unwrap_or_else(|| journal.acked().generation);
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut shared = Vec::new();
        let mut starts = Vec::new();
        for t in &config.targets {
            let cursor = match stored.iter().find(|(id, _)| id == t.id()) {
                Some((_, c)) if c.v == 1 => c.clone(),
                Some((_, c)) => {
                    return Err(format!(
                        "forward cursor of {} has version {}, newer than this stathook's 1",
                        t.url, c.v
                    ))
                }
                None => Cursor::at(oldest),
            };
            let s = Arc::new(Shared {
                target: t.clone(),
                status: Mutex::new(TargetStatus {
                    url: t.url.clone(),
                    cursor_generation: cursor.next.at.generation,
                    cursor_offset: cursor.next.at.offset,
                    sent_samples: cursor.sent_samples,
                    dead_letters: cursor.dead_letters,
                    released_samples: cursor.released_samples,
                    ..TargetStatus::default()
                }),
                committed_generation: AtomicU64::new(cursor.next.at.generation),
                release_below: AtomicU64::new(0),
                forwarded_mark: AtomicI64::new(0),
                behind_since_ms: AtomicU64::new(crate::clock::now_ms() as u64),
            });
            shared.push(s.clone());
            starts.push((s, cursor));
        }
        let forwarder = Arc::new(Forwarder {
            targets: shared,
            journal: journal.clone(),
            stop,
            threads: Mutex::new(Vec::new()),
            outbound,
            store,
        });
        forwarder.update_hold();
        let mut threads = Vec::new();
        let limits = (config.max_batch_samples, config.max_batch_bytes);
        for (s, cursor) in starts {
            let f = forwarder.clone();
            let stop = forwarder.stop.subscribe();
            threads.push(
                std::thread::Builder::new()
                    .name("forward".into())
                    .spawn(move || send::run(f, s, cursor, limits, stop))
                    .map_err(|e| format!("spawn a forward thread: {e}"))?,
            );
        }
        let f = forwarder.clone();
        let stop = forwarder.stop.subscribe();
        let max = config.max_backlog_bytes;
        threads.push(
            std::thread::Builder::new()
                .name("forward-backlog".into())
                .spawn(move || backlog_loop(f, max, stop))
                .map_err(|e| format!("spawn the forward backlog check: {e}"))?,
        );
        *forwarder.threads.lock() = threads;
        Ok(forwarder)
    }

    /// Every target's state, in the order given.
    pub fn status(&self) -> Vec<TargetStatus> {
        let acked = self.journal.samples_acked();
        let now = crate::clock::now_ms();
        self.targets
            .iter()
            .map(|s| {
                let mut st = s.status.lock().clone();
                let behind = s.behind_since_ms.load(Ordering::Relaxed);
                let mark = s.forwarded_mark.load(Ordering::Relaxed);
                st.lag_samples = (acked as i64 - mark).max(0) as u64;
                st.lag_seconds = if behind == 0 {
                    0.0
                } else {
                    (now - behind as i64).max(0) as f64 / 1000.0
                };
                st
            })
            .collect()
    }

    /// Lets the journal delete the files every target's committed cursor has passed.
    fn update_hold(&self) {
        let floor = self
            .targets
            .iter()
            .map(|s| s.committed_generation.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX);
        if floor > self.journal.hold() || floor == u64::MAX {
            if let Err(e) = self.journal.hold_from(floor) {
                tracing::warn!(error = %e, "could not remove forwarded journal files");
            }
        }
    }

    /// Resends the dead letters of the target `url` (every target: `None`); each one the
    /// target accepts is removed. Returns (target, resent, still dead, last error).
    pub async fn replay(&self, url: Option<&str>) -> Result<Vec<ReplayResult>, String> {
        let mut out = Vec::new();
        let chosen: Vec<&Arc<Shared>> = self
            .targets
            .iter()
            .filter(|s| url.is_none_or(|u| u == s.target.url))
            .collect();
        if chosen.is_empty() {
            return Err(format!("no forward target {}", url.unwrap_or_default()));
        }
        for s in chosen {
            let letters = self
                .store
                .dead_letters(s.target.id())
                .map_err(|e| e.to_string())?;
            let mut r = ReplayResult {
                url: s.target.url.clone(),
                ..ReplayResult::default()
            };
            for (seq, _, body) in letters {
                match send::post(&self.outbound, &s.target, body).await {
                    Ok(resp) if (200..300).contains(&resp.status) => {
                        self.store
                            .remove_dead_letter(s.target.id(), seq)
                            .map_err(|e| e.to_string())?;
                        r.resent += 1;
                    }
                    Ok(resp) => {
                        r.still_dead += 1;
                        r.last_error = Some(send::describe_status(&resp));
                    }
                    Err(e) => {
                        r.still_dead += 1;
                        r.last_error = Some(e.to_string());
                    }
                }
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Stops every thread; each commits its cursor first. A request in flight is abandoned
    /// (its batch is sent again after the restart: at least once).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResult {
    pub url: String,
    pub resent: u64,
    pub still_dead: u64,
    pub last_error: Option<String>,
}

/// Every second: when the sealed files held only for lagging targets pass `max_bytes`,
/// releases the oldest generation (the lagging targets skip it; its samples are counted
/// and logged, and stay in stathook's own store).
fn backlog_loop(f: Arc<Forwarder>, max_bytes: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let floor = f.journal.hold();
        if floor == u64::MAX {
            continue;
        }
        let current = f.journal.acked().generation;
        let Ok(sizes) = f.journal.file_sizes() else {
            continue;
        };
        let held: Vec<(u64, u64)> = sizes
            .into_iter()
            .filter(|(g, _)| *g >= floor && *g < current)
            .collect();
        let total: u64 = held.iter().map(|(_, b)| b).sum();
        if total <= max_bytes {
            continue;
        }
        let oldest = held[0].0;
        let mut newly = false;
        for s in &f.targets {
            if s.committed_generation.load(Ordering::SeqCst) <= oldest {
                newly |= s.release_below.fetch_max(oldest + 1, Ordering::SeqCst) <= oldest;
            }
        }
        if newly {
            tracing::warn!(generation = oldest, held_bytes = total, max_bytes,
            "forward backlog over --forward-max-backlog: releasing the oldest journal generation; lagging targets will miss its samples (they stay in stathook)");
        }
    }
}
