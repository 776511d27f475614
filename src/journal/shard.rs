//! The lock-sharded append buffers, the group-commit flusher and the applier behind them.
//!
//! A request's records go into the buffers of their shards (one parking_lot mutex each, so
//! concurrent requests rarely contend). One flusher thread drains every shard at once, writes
//! all drained records as one frame of the current generation's journal file, fdatasyncs
//! once, and acknowledges each request. Requests that arrive during a sync wait and share
//! the next one; with several clients sending at once, the flusher holds a sync back up to
//! 200 µs for as many requests as its recent groups held (`GroupWait`). The frame then goes
//! to the applier thread, which puts it into the memtable while the flusher is already
//! syncing the next frame; reads wait for the applier to catch up with every acknowledged
//! frame (`Applied::wait`), so a 200 still means "readable".
//! Measured: applying on the flusher kept ~125 µs of a ~460 µs commit cycle on the path of
//! every request. One file and one sync per group (not one per shard) because each
//! 100-metric request touches every shard, so per-shard files made every request wait for N
//! syncs (with 2 shard files: ~4.4 server CPU-s per million samples and ~0.2 M samples/s;
//! one file: ~4.0 and ~0.21 M, in consecutive runs, not interleaved).

use super::file::JournalFile;
use super::record::{decode_record_bytes, FrameBuilder, MAX_FRAME_TARGET_BYTES};
use super::JournalError;
use crate::memtable::Memtable;
use parking_lot::{Condvar, Mutex, RwLock};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

pub(crate) type Ack = oneshot::Sender<Result<(), JournalError>>;

/// One request's records and who to tell when they are durable. A request with records in
/// several shards is acknowledged when its last part is (`Part::ack` on the last one only).
pub(crate) struct Part {
    pub record: Vec<u8>,
    pub ack: Option<Ack>,
    /// Samples in `record`, for the acknowledged-sample count the forwarder's lag uses.
    pub samples: u64,
}

pub(crate) enum Control {
    /// Seal the current file and start generation `.0` in file `.1`; answer when done.
    Rotate(
        u64,
        JournalFile,
        std::sync::mpsc::Sender<Result<(), JournalError>>,
    ),
    Stop,
}

#[derive(Default)]
pub(crate) struct Signal {
    pending: bool,
    /// Requests pushed since the flusher last took the signal.
    requests: usize,
    /// A push wakes the flusher once `requests` reaches this: 0 (every push) normally, the
    /// group's target while the flusher waits for one (so it is not woken for every request).
    wake_at: usize,
    controls: Vec<Control>,
    closed: bool,
}

/// The longest the flusher holds a pending request back for others to share its fdatasync
/// (`GroupWait`). In interleaved runs 50 and 100 µs showed no clear saving (2 rounds), 300
/// none beyond 200's (4 rounds).
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

/// How many requests the flusher waits for before it syncs, from the last groups it
/// committed (`Fsync::Always` only). With several clients sending at once, a sync started
/// as soon as one request is pending covered ~1.6 of compare.sh's 4 connections, and the
/// others waited for the next: an fdatasync and its wakeups per 1.6 requests. Waiting up
/// to `GROUP_WAIT` for as many requests as the largest of the last 8 groups lets one sync
/// cover all 4 (measured: 4.0 requests a sync, ~15 % less server CPU per sample, ~5 % fewer
/// samples/s, p99 lower; docs/benchmarks.md). A lone client (groups of 1) never waits, and
/// when clients leave, the target falls within 8 groups.
#[derive(Default)]
struct GroupWait {
    recent: [usize; 8],
    next: usize,
}

impl GroupWait {
    fn target(&self) -> usize {
        self.recent.iter().copied().max().unwrap_or(0)
    }

    fn record(&mut self, requests: usize) {
        self.recent[self.next] = requests;
        self.next = (self.next + 1) % self.recent.len();
    }
}

pub(crate) struct Shared {
    pub shards: Vec<Mutex<Vec<Part>>>,
    /// Requests push all their parts under a read guard; the flusher drains under the write
    /// guard. So all parts of a request land in the same frame: a crash keeps all or none.
    pub gate: RwLock<()>,
    pub signal: Mutex<Signal>,
    pub wake: Condvar,
}

impl Shared {
    pub fn new(shards: usize) -> Shared {
        Shared {
            shards: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            gate: RwLock::new(()),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
        }
    }

    /// Queues one request's records (by shard). Fails once the journal is stopping.
    pub fn push(&self, parts: Vec<(usize, Part)>) -> Result<(), JournalError> {
        {
            let _gate = self.gate.read();
            if self.signal.lock().closed {
                return Err(JournalError::Closed);
            }
            for (shard, part) in parts {
                self.shards[shard].lock().push(part);
            }
        }
        let wake = {
            let mut sig = self.signal.lock();
            sig.pending = true;
            sig.requests += 1;
            sig.requests >= sig.wake_at
        };
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    pub fn control(&self, c: Control) {
        self.signal.lock().controls.push(c);
        self.wake.notify_one();
    }
}

/// How far the applier has got, so reads can wait for every acknowledged frame.
#[derive(Default)]
pub(crate) struct Applied {
    /// Sequence number of the last frame that is durable (set before its acknowledgements).
    durable: std::sync::atomic::AtomicU64,
    /// Sequence number of the last frame in the memtable.
    applied: Mutex<u64>,
    caught_up: Condvar,
}

impl Applied {
    /// Blocks until every frame acknowledged so far is in the memtable. Usually returns at
    /// once; at most it waits for one frame's apply (~0.1 ms).
    pub fn wait(&self) {
        let target = self.durable.load(std::sync::atomic::Ordering::SeqCst);
        let mut applied = self.applied.lock();
        while *applied < target {
            self.caught_up.wait(&mut applied);
        }
    }

    fn set_applied(&self, seq: u64) {
        *self.applied.lock() = seq;
        self.caught_up.notify_all();
    }
}

/// Work for the applier, in commit order.
pub(crate) enum ApplierWork {
    Frame {
        seq: u64,
        generation: u64,
        records: Vec<Vec<u8>>,
    },
    /// Seal the memtable's current generation (after every frame before it is applied).
    Rotate(u64, std::sync::mpsc::Sender<Result<(), JournalError>>),
}

/// Applies durable frames to the memtable, in order.
pub(crate) fn run_applier(
    work: std::sync::mpsc::Receiver<ApplierWork>,
    memtable: Arc<Memtable>,
    applied: Arc<Applied>,
) {
    for w in work {
        match w {
            ApplierWork::Frame {
                seq,
                generation,
                records,
            } => {
                for record in &records {
                    let rec = decode_record_bytes(record)
                        .expect("BUG: a record this process encoded does not decode");
                    memtable.apply(generation, rec.project, &rec.samples);
                }
                applied.set_applied(seq);
            }
            ApplierWork::Rotate(next, done) => {
                for shard in 0..memtable.shard_count() {
                    memtable.rotate(shard, next);
                }
                let _ = done.send(Ok(()));
            }
        }
    }
}

pub(crate) struct Flusher {
    pub dir: PathBuf,
    pub generation: u64,
    pub file: JournalFile,
    pub shared: Arc<Shared>,
    pub applier: std::sync::mpsc::Sender<ApplierWork>,
    pub applied: Arc<Applied>,
    /// Sequence number of the last durable frame.
    pub seq: u64,
    /// Set after a failed fdatasync: the kernel may have dropped the dirty pages, so nothing
    /// written since the last good sync can be trusted. Refuse appends until a restart.
    pub poisoned: Option<String>,
    pub fsync: Fsync,
    /// When the file was last fdatasync'd with nothing written after it: None. Otherwise
    /// when the oldest unsynced frame was written (`Fsync::Interval` only).
    pub unsynced_since: Option<std::time::Instant>,
    pub counters: Arc<Counters>,
}

/// When the flusher fdatasyncs the journal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before every acknowledgement: a 200 survives power loss. The default.
    Always,
    /// At most this long after a frame is written, and at every rotation and stop. A 200
    /// means the samples are in the kernel's page cache: they survive the process being
    /// killed, but a power loss or kernel crash loses up to this much acknowledged data.
    Interval(std::time::Duration),
}

/// What the flusher has done, for `GET /api/v1/admin/journal`.
#[derive(Default)]
pub struct Counters {
    pub frames: std::sync::atomic::AtomicU64,
    pub syncs: std::sync::atomic::AtomicU64,
    /// Whether the current file takes O_DIRECT appends; kept up to date by the flusher.
    pub direct: std::sync::atomic::AtomicBool,
    /// Where the last acknowledged frame ends: (generation, byte offset in its file). The
    /// forwarder reads up to here and no further.
    pub acked: parking_lot::Mutex<(u64, u64)>,
    /// Samples acknowledged since the server started.
    pub samples: std::sync::atomic::AtomicU64,
    /// Time spent in fdatasync since the server started, in nanoseconds.
    pub sync_nanos: std::sync::atomic::AtomicU64,
}

impl Flusher {
    /// At a stop: a generation that holds nothing (a clean shutdown's last compaction round
    /// has just opened it) needs no file; its 1 MiB of zero-filled room would otherwise stay
    /// in the data dir until the next start's first round. Never a file with a frame in it.
    fn remove_if_empty(&self) {
        if !self.file.is_empty() || self.poisoned.is_some() {
            return;
        }
        let path = super::file::path_of(&self.dir, self.generation);
        if super::file::remove(&path).is_ok() {
            let _ = super::file::sync_dir(&self.dir);
        }
    }

    pub fn run(mut self) {
        let mut group: Vec<Part> = Vec::new();
        let mut group_wait = GroupWait::default();
        loop {
            let controls = {
                let mut sig = self.shared.signal.lock();
                while !sig.pending && sig.controls.is_empty() {
                    match self.sync_deadline() {
                        Some(deadline) => {
                            if self.shared.wake.wait_until(&mut sig, deadline).timed_out() {
                                break;
                            }
                        }
                        None => self.shared.wake.wait(&mut sig),
                    }
                }
                if self.fsync == Fsync::Always && sig.pending {
                    let target = group_wait.target();
                    let deadline = std::time::Instant::now() + GROUP_WAIT;
                    sig.wake_at = target;
                    while sig.requests < target && sig.controls.is_empty() {
                        if self.shared.wake.wait_until(&mut sig, deadline).timed_out() {
                            break;
                        }
                    }
                    sig.wake_at = 0;
                }
                group_wait.record(sig.requests);
                sig.requests = 0;
                sig.pending = false;
                std::mem::take(&mut sig.controls)
            };
            {
                let _gate = self.shared.gate.write();
                for shard in &self.shared.shards {
                    group.append(&mut shard.lock());
                }
            }
            self.commit(&mut group);
            if self
                .sync_deadline()
                .is_some_and(|d| d <= std::time::Instant::now())
            {
                let _ = self.sync();
            }
            for c in controls {
                match c {
                    Control::Rotate(next, file, done) => match self.sync() {
                        // The applier answers once the memtable is sealed too.
                        Ok(()) => {
                            *self.counters.acked.lock() = (next, file.len());
                            self.file = file;
                            self.generation = next;
                            self.note_direct();
                            let _ = self.applier.send(ApplierWork::Rotate(next, done));
                        }
                        Err(e) => {
                            let _ = done.send(Err(e));
                        }
                    },
                    Control::Stop => {
                        {
                            let _gate = self.shared.gate.write();
                            self.shared.signal.lock().closed = true;
                            for shard in &self.shared.shards {
                                group.append(&mut shard.lock());
                            }
                        }
                        self.commit(&mut group);
                        let _ = self.sync();
                        self.remove_if_empty();
                        return;
                    }
                }
            }
        }
    }

    /// Writes, syncs and acknowledges `group`, in frames of bounded size, and hands each
    /// durable frame to the applier.
    fn commit(&mut self, group: &mut Vec<Part>) {
        while !group.is_empty() {
            let mut end = 0;
            let mut bytes = 0;
            // Cut only where a request ends (its last part carries the ack), so each request
            // stays within one frame.
            while end < group.len()
                && (bytes < MAX_FRAME_TARGET_BYTES || group[end - 1].ack.is_none())
            {
                bytes += group[end].record.len();
                end += 1;
            }
            let parts: Vec<Part> = group.drain(..end).collect();
            self.commit_frame(parts, bytes);
        }
    }

    fn commit_frame(&mut self, parts: Vec<Part>, bytes: usize) {
        let result = match &self.poisoned {
            Some(why) => Err(JournalError::Poisoned { why: why.clone() }),
            None => {
                let mut frame = FrameBuilder::new(bytes);
                for p in &parts {
                    frame.push(&p.record);
                }
                self.write_and_sync(frame.finish())
            }
        };
        let mut acks = Vec::with_capacity(parts.len());
        let mut records = Vec::with_capacity(parts.len());
        let mut samples = 0;
        for p in parts {
            acks.extend(p.ack);
            records.push(p.record);
            samples += p.samples;
        }
        if result.is_ok() {
            // Before the acks: a forwarder that sees a 200's samples counted finds them here.
            *self.counters.acked.lock() = (self.generation, self.file.len());
            self.counters
                .samples
                .fetch_add(samples, std::sync::atomic::Ordering::Relaxed);
            self.seq += 1;
            // Recorded before acknowledged, so a read after the 200 waits for this frame.
            self.applied
                .durable
                .store(self.seq, std::sync::atomic::Ordering::SeqCst);
            let work = ApplierWork::Frame {
                seq: self.seq,
                generation: self.generation,
                records,
            };
            if self.applier.send(work).is_err() {
                panic!("BUG: the applier thread stopped while the flusher runs");
            }
        }
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }

    /// Writes `frame`; syncs it now (`Fsync::Always`) or marks it for the next interval sync.
    fn write_and_sync(&mut self, frame: &[u8]) -> Result<(), JournalError> {
        self.file
            .append(frame)
            .map_err(|e| JournalError::io("append to the journal".into(), &e))?;
        self.counters
            .frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // An O_DIRECT write refused mid-file turns the file buffered.
        self.note_direct();
        self.unsynced_since
            .get_or_insert_with(std::time::Instant::now);
        match self.fsync {
            Fsync::Always => self.sync(),
            Fsync::Interval(_) => Ok(()),
        }
    }

    fn note_direct(&self) {
        self.counters
            .direct
            .store(self.file.is_direct(), std::sync::atomic::Ordering::Relaxed);
    }

    /// When the unsynced frames must be synced by (`Fsync::Interval` with frames unsynced).
    fn sync_deadline(&self) -> Option<std::time::Instant> {
        if self.poisoned.is_some() {
            // No sync will succeed: without this the wait would time out at once, forever.
            return None;
        }
        match self.fsync {
            Fsync::Interval(every) => self.unsynced_since.map(|t| t + every),
            Fsync::Always => None,
        }
    }

    /// fdatasyncs the current file if a frame was written since the last sync.
    fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        if let Some(why) = &self.poisoned {
            return Err(JournalError::Poisoned { why: why.clone() });
        }
        let started = std::time::Instant::now();
        let synced = self.file.sync();
        self.counters.sync_nanos.fetch_add(
            started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Err(e) = synced {
            let why = format!("fdatasync of the journal failed: {e}");
            tracing::error!(error = %e, "journal sync failed; refusing writes until restart");
            self.poisoned = Some(why);
            if self.fsync == Fsync::Always {
                // The frame's requests get this error: nothing acknowledged is at risk, so
                // rotations (and the compaction of what is in memory) may go on.
                self.unsynced_since = None;
            }
            return Err(JournalError::io("sync the journal".into(), &e));
        }
        self.unsynced_since = None;
        self.counters
            .syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::GroupWait;

    #[test]
    fn group_wait_targets_the_largest_recent_group_and_forgets_it_after_eight() {
        let mut w = GroupWait::default();
        assert_eq!(w.target(), 0, "nothing seen: never wait");
        for n in [1, 1, 1] {
            w.record(n);
        }
        assert_eq!(w.target(), 1, "a lone client: a group is complete at once");
        w.record(4);
        assert_eq!(w.target(), 4);
        for i in 0..7 {
            w.record(3);
            assert_eq!(w.target(), 4, "after {} smaller groups", i + 1);
        }
        w.record(3);
        assert_eq!(w.target(), 3, "eight groups later the 4 is forgotten");
    }
}
