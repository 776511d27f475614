//! One target's thread: reads batches from its cursor, sends each until the target answers,
//! commits the cursor after the 2xx. Network errors, 408, 429 and 5xx are retried with
//! exponential backoff and jitter (100 ms doubling to 60 s, at least `Retry-After`); any
//! other answer makes the batch a dead letter (stored with the answer, the cursor moves
//! on). One request in flight, so each series reaches the target in journal order.

use super::batch::{self, Next};
use super::{Cursor, Forwarder, Shared, Target};
use crate::journal::Position;
use crate::outbound::{Outbound, Response, SendError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read from the journal at a time (a larger first frame is read whole).
const WINDOW: usize = 8 << 20;
/// How often an idle target looks for new acknowledged frames.
const POLL: Duration = Duration::from_millis(50);
/// A cursor that moved is committed at most this often (and at a generation's end, when
/// caught up, and at a stop): a crash resends at most this much. Committing after every
/// batch would cost a store transaction per 2,000 samples.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
const FIRST_RETRY_MS: i64 = 100;
const MAX_RETRY_MS: i64 = 60_000;

pub(super) fn run(
    f: Arc<Forwarder>,
    s: Arc<Shared>,
    cursor: Cursor,
    (max_samples, max_bytes): (usize, usize),
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, target = %s.target.url, "forwarding cannot start");
            return;
        }
    };
    let mut l = Loop {
        f,
        s,
        cursor,
        committed: Instant::now(),
        dirty: false,
        stop,
        max_samples,
        max_bytes,
        chunk: None,
        labeller: batch::Labeller::default(),
    };
    rt.block_on(l.run());
}

struct Loop {
    f: Arc<Forwarder>,
    s: Arc<Shared>,
    /// Ahead of the committed cursor by what was sent since the last commit.
    cursor: Cursor,
    committed: Instant,
    dirty: bool,
    stop: tokio::sync::watch::Receiver<bool>,
    max_samples: usize,
    max_bytes: usize,
    /// The last journal read: batches are cut from it until it is used up, so each byte is
    /// read once.
    chunk: Option<crate::journal::Chunk>,
    labeller: batch::Labeller,
}

enum Outcome {
    Delivered,
    /// Refused for good: (status, the start of the answer).
    Dead(u16, String),
    /// The backlog check released the batch's generation while it was being retried.
    Released,
    Stopped,
}

impl Loop {
    async fn run(&mut self) {
        let backlog = self.count_backlog();
        self.s
            .forwarded_mark
            .store(-(backlog as i64), Ordering::Relaxed);
        loop {
            if *self.stop.borrow() {
                self.commit();
                return;
            }
            self.apply_release();
            let journal = &self.f.journal;
            let acked_samples = journal.samples_acked();
            let acked = journal.acked();
            if self.cursor.next.at >= acked {
                self.caught_up(acked_samples);
                if self.idle().await {
                    self.commit();
                    return;
                }
                continue;
            }
            let next = self.cursor.next;
            if let Some(b) = self.cached_batch(next) {
                if b.samples > 0 || b.generation_done {
                    self.handle(b).await;
                    if *self.stop.borrow() {
                        self.commit();
                        return;
                    }
                    continue;
                }
            }
            // The cached read is used up: read on from the cursor.
            self.chunk = None;
            let journal = &self.f.journal;
            let chunk = match journal.read_at(next.at, WINDOW) {
                Ok(c) => c,
                Err(e) => {
                    if self.cursor.next.at.generation < acked.generation {
                        // The file is gone (forwarding was off when it was compacted).
                        tracing::warn!(target = %self.s.target.url, generation = self.cursor.next.at.generation, error = %e,
                            "journal generation gone before it was forwarded; its samples are not sent");
                        self.next_generation();
                    } else if self.idle().await {
                        self.commit();
                        return;
                    }
                    continue;
                }
            };
            let b = batch::build_with(
                &mut self.labeller,
                batch::Source::of(&chunk),
                next.skip,
                self.max_samples,
                self.max_bytes,
            );
            self.chunk = Some(chunk);
            if b.samples == 0 && !b.generation_done && b.next == self.cursor.next {
                // Nothing whole to read yet.
                self.caught_up(acked_samples);
                if self.idle().await {
                    self.commit();
                    return;
                }
                continue;
            }
            self.handle(b).await;
            if *self.stop.borrow() {
                self.commit();
                return;
            }
        }
    }

    /// The batch at `next` from the cached read, when it covers `next`.
    fn cached_batch(&mut self, next: Next) -> Option<batch::Batch> {
        let c = self.chunk.as_ref()?;
        if c.at.generation != next.at.generation || next.at.offset < c.at.offset {
            return None;
        }
        let off = (next.at.offset - c.at.offset) as usize;
        if off >= c.bytes.len() {
            return None;
        }
        let src = batch::Source {
            at: next.at,
            bytes: &c.bytes[off..],
            sealed: c.sealed,
        };
        Some(batch::build_with(
            &mut self.labeller,
            src,
            next.skip,
            self.max_samples,
            self.max_bytes,
        ))
    }

    /// Sends one batch (or moves past an empty stretch) and advances the cursor. Returns
    /// early, the cursor unmoved, when told to stop or when the batch could not be settled.
    async fn handle(&mut self, b: batch::Batch) {
        if let Some(d) = b.damage {
            tracing::error!(target = %self.s.target.url, generation = b.next.at.generation, offset = b.next.at.offset, damage = %d,
                "damaged journal frame; the rest of this generation is not forwarded");
        }
        if b.samples == 0 {
            if b.generation_done {
                self.next_generation();
            } else {
                self.cursor.next = b.next;
            }
            return;
        }
        self.behind();
        let body = b.encode();
        let generation = self.cursor.next.at.generation;
        match self.deliver(body.clone(), generation).await {
            Outcome::Delivered => {
                self.cursor.sent_samples += b.samples;
                self.s
                    .forwarded_mark
                    .fetch_add(b.samples as i64, Ordering::Relaxed);
                let mut st = self.s.status.lock();
                st.sent_samples = self.cursor.sent_samples;
                st.sent_batches += 1;
                st.last_success_ms = Some(crate::clock::now_ms());
            }
            Outcome::Dead(status, answer) => {
                let mut advanced = self.cursor.clone();
                advanced.next = b.next;
                advanced.dead_letters += 1;
                let letter = crate::store::DeadLetter {
                    at_ms: crate::clock::now_ms(),
                    status,
                    answer: answer.clone(),
                    samples: b.samples,
                };
                tracing::warn!(target = %self.s.target.url, status, samples = b.samples, answer = %answer,
                    "forward target refused a batch; kept as a dead letter (stathook forward replay resends it)");
                if let Err(e) =
                    self.f
                        .store
                        .add_dead_letter(self.s.target.id(), &letter, &body, &advanced)
                {
                    tracing::error!(error = %e, "could not store the dead letter; the batch will be sent again");
                    let _ = self.idle().await;
                    return;
                }
                self.cursor.dead_letters = advanced.dead_letters;
                self.s
                    .forwarded_mark
                    .fetch_add(b.samples as i64, Ordering::Relaxed);
                self.s.status.lock().dead_letters = self.cursor.dead_letters;
            }
            Outcome::Released | Outcome::Stopped => return,
        }
        self.cursor.next = b.next;
        self.dirty = true;
        if b.generation_done {
            self.next_generation();
        } else if self.committed.elapsed() >= COMMIT_EVERY {
            self.commit();
        }
    }

    /// Waits one poll interval; true when told to stop.
    async fn idle(&mut self) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => false,
            _ = self.stop.changed() => true,
        }
    }

    fn caught_up(&mut self, acked_samples: u64) {
        self.s
            .forwarded_mark
            .store(acked_samples as i64, Ordering::Relaxed);
        self.s.behind_since_ms.store(0, Ordering::Relaxed);
        if self.dirty {
            self.commit();
        }
    }

    fn behind(&self) {
        let _ = self.s.behind_since_ms.compare_exchange(
            0,
            crate::clock::now_ms() as u64,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Moves to the first frame of the next generation on disk and commits, so that the
    /// finished file may be deleted.
    fn next_generation(&mut self) {
        let current = self.cursor.next.at.generation;
        let acked = self.f.journal.acked().generation;
        let later = self
            .f
            .journal
            .generations()
            .ok()
            .and_then(|g| g.into_iter().find(|g| *g > current));
        let next = match later {
            Some(g) => g.min(acked),
            None if current < acked => acked,
            None => return,
        };
        self.cursor.next = Next {
            at: Position::start_of(next),
            skip: 0,
        };
        self.dirty = true;
        self.commit();
    }

    /// Skips the generations the backlog check released, counting their samples.
    fn apply_release(&mut self) {
        let below = self.s.release_below.load(Ordering::SeqCst);
        if self.cursor.next.at.generation >= below {
            return;
        }
        let released = self.count_until(below);
        self.cursor.released_samples += released;
        self.s
            .forwarded_mark
            .fetch_add(released as i64, Ordering::Relaxed);
        self.s.status.lock().released_samples = self.cursor.released_samples;
        tracing::warn!(target = %self.s.target.url, released_samples = released, below_generation = below,
            "forward backlog released: these samples will not reach this target");
        self.cursor.next = Next {
            at: Position::start_of(below),
            skip: 0,
        };
        self.dirty = true;
        self.commit();
    }

    /// Samples from the cursor up to the acknowledged end (the lag found at start).
    fn count_backlog(&self) -> u64 {
        self.count_until(u64::MAX)
    }

    /// Samples from the cursor to the start of generation `until` (or the acknowledged end).
    fn count_until(&self, until: u64) -> u64 {
        let journal = &self.f.journal;
        let Ok(generations) = journal.generations() else {
            return 0;
        };
        let mut next = self.cursor.next;
        let mut total = 0;
        loop {
            if next.at.generation >= until || next.at >= journal.acked() {
                return total;
            }
            let advanced = journal
                .read_at(next.at, WINDOW)
                .map(|chunk| batch::build(&chunk, next.skip, usize::MAX, usize::MAX));
            match advanced {
                Ok(b) if b.samples > 0 || b.next != next => {
                    total += b.samples;
                    next = b.next;
                    if !b.generation_done {
                        continue;
                    }
                }
                _ => {}
            }
            match generations.iter().find(|g| **g > next.at.generation) {
                Some(g) => {
                    next = Next {
                        at: Position::start_of(*g),
                        skip: 0,
                    }
                }
                None => return total,
            }
        }
    }

    fn commit(&mut self) {
        if !self.dirty {
            return;
        }
        match self
            .f
            .store
            .set_forward_cursor(self.s.target.id(), &self.cursor)
        {
            Ok(()) => {
                self.dirty = false;
                self.committed = Instant::now();
                let at = self.cursor.next.at;
                self.s
                    .committed_generation
                    .store(at.generation, Ordering::SeqCst);
                {
                    let mut st = self.s.status.lock();
                    st.cursor_generation = at.generation;
                    st.cursor_offset = at.offset;
                }
                self.f.update_hold();
            }
            Err(e) => {
                tracing::warn!(error = %e, target = %self.s.target.url, "could not commit the forward cursor; retrying")
            }
        }
    }

    /// Sends `body` until the target accepts or refuses it for good.
    async fn deliver(&mut self, body: Vec<u8>, generation: u64) -> Outcome {
        let mut attempt = 0;
        loop {
            if *self.stop.borrow() {
                return Outcome::Stopped;
            }
            if self.s.release_below.load(Ordering::SeqCst) > generation {
                return Outcome::Released;
            }
            let sent = tokio::select! {
                r = post(&self.f.outbound, &self.s.target, body.clone()) => r,
                _ = self.stop.changed() => return Outcome::Stopped,
            };
            let (why, retry_after) = match sent {
                Ok(r) if (200..300).contains(&r.status) => return Outcome::Delivered,
                Ok(r) if r.status == 408 || r.status == 429 || r.status >= 500 => {
                    (describe_status(&r), r.retry_after)
                }
                Ok(r) => return Outcome::Dead(r.status, answer_text(&r)),
                Err(e) => (e.to_string(), None),
            };
            attempt += 1;
            let delay = crate::outbound::backoff_ms(
                FIRST_RETRY_MS,
                MAX_RETRY_MS,
                attempt,
                retry_after.map(|d| d.as_millis() as i64),
                crate::outbound::random_u64(),
            );
            {
                let mut st = self.s.status.lock();
                st.retries += 1;
                st.last_error = Some(why.clone());
                st.last_error_ms = Some(crate::clock::now_ms());
            }
            if attempt == 1 || attempt % 10 == 0 {
                tracing::warn!(target = %self.s.target.url, attempt, error = %why, retry_in_ms = delay,
                    "forward target did not accept a batch; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(delay as u64)) => {}
                _ = self.stop.changed() => return Outcome::Stopped,
            }
        }
    }
}

/// One remote-write request to `target`, with the protocol's headers and the target's own.
pub(super) async fn post(
    outbound: &Outbound,
    target: &Target,
    body: Vec<u8>,
) -> Result<Response, SendError> {
    let mut headers: Vec<(&str, String)> = vec![
        ("Content-Encoding", "snappy".into()),
        ("X-Prometheus-Remote-Write-Version", "0.1.0".into()),
    ];
    headers.extend(target.headers.iter().map(|(n, v)| (n.as_str(), v.clone())));
    outbound
        .post(&target.url, "application/x-protobuf", &headers, body)
        .await
}

pub(super) fn describe_status(r: &Response) -> String {
    format!("HTTP {}: {}", r.status, answer_text(r))
}

/// The start of an answer's body, one line, for the log and the dead letter.
fn answer_text(r: &Response) -> String {
    let text = String::from_utf8_lossy(&r.body);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}
