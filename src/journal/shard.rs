//! The lock-sharded append buffers and the group-commit flusher behind them.
//!
//! A request's records go into the buffers of their shards (one parking_lot mutex each, so
//! concurrent requests rarely contend). One flusher thread drains every shard at once, writes
//! all drained records as one frame of the current generation's journal file, fdatasyncs
//! once, applies the records to the memtable, then acknowledges each request. Requests that
//! arrive during a sync wait and share the next one. One file and one sync per group (not
//! one per shard) because each 100-metric request touches every shard: per-shard files made
//! every request wait for N syncs and doubled the kernel CPU per sample (measured, 2 shards).

use super::file::JournalFile;
use super::record::{decode_record_bytes, FrameBuilder, MAX_FRAME_TARGET_BYTES};
use super::JournalError;
use crate::memtable::{shard_of, Memtable};
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
}

pub(crate) enum Control {
    /// Seal the current file and start generation `.0`; answer when done.
    Rotate(u64, std::sync::mpsc::Sender<Result<(), JournalError>>),
    Stop,
}

#[derive(Default)]
pub(crate) struct Signal {
    pending: bool,
    controls: Vec<Control>,
    closed: bool,
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
        self.signal.lock().pending = true;
        self.wake.notify_one();
        Ok(())
    }

    pub fn control(&self, c: Control) {
        self.signal.lock().controls.push(c);
        self.wake.notify_one();
    }
}

pub(crate) struct Flusher {
    pub dir: PathBuf,
    pub generation: u64,
    pub file: JournalFile,
    pub shared: Arc<Shared>,
    pub memtable: Arc<Memtable>,
    pub format_version: u32,
    /// Set after a failed fdatasync: the kernel may have dropped the dirty pages, so nothing
    /// written since the last good sync can be trusted. Refuse appends until a restart.
    pub poisoned: Option<String>,
}

impl Flusher {
    pub fn run(mut self) {
        let mut group: Vec<Part> = Vec::new();
        loop {
            let controls = {
                let mut sig = self.shared.signal.lock();
                while !sig.pending && sig.controls.is_empty() {
                    self.shared.wake.wait(&mut sig);
                }
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
            for c in controls {
                match c {
                    Control::Rotate(next, done) => {
                        let _ = done.send(self.rotate(next));
                    }
                    Control::Stop => {
                        {
                            let _gate = self.shared.gate.write();
                            self.shared.signal.lock().closed = true;
                            for shard in &self.shared.shards {
                                group.append(&mut shard.lock());
                            }
                        }
                        self.commit(&mut group);
                        return;
                    }
                }
            }
        }
    }

    /// Writes, syncs, applies and acknowledges `group`, in frames of bounded size.
    fn commit(&mut self, group: &mut Vec<Part>) {
        let mut start = 0;
        while start < group.len() {
            let mut end = start;
            let mut bytes = 0;
            // Cut only where a request ends (its last part carries the ack), so each request
            // stays within one frame.
            while end < group.len()
                && (bytes < MAX_FRAME_TARGET_BYTES || group[end - 1].ack.is_none())
            {
                bytes += group[end].record.len();
                end += 1;
            }
            self.commit_frame(&mut group[start..end], bytes);
            start = end;
        }
        group.clear();
    }

    fn commit_frame(&mut self, parts: &mut [Part], bytes: usize) {
        if let Some(why) = &self.poisoned {
            let err = JournalError::Poisoned { why: why.clone() };
            for p in parts.iter_mut() {
                if let Some(ack) = p.ack.take() {
                    let _ = ack.send(Err(err.clone()));
                }
            }
            return;
        }
        let mut frame = FrameBuilder::new(bytes);
        for p in parts.iter() {
            frame.push(&p.record);
        }
        let result = self.write_and_sync(frame.finish());
        if result.is_ok() {
            for p in parts.iter() {
                let rec = decode_record_bytes(&p.record)
                    .expect("BUG: a record this process encoded does not decode");
                let Some(first) = rec.samples.first() else {
                    continue;
                };
                self.memtable.apply(
                    shard_of(rec.project, first.metric_id, self.memtable.shard_count()),
                    self.generation,
                    rec.project,
                    rec.samples.iter().copied(),
                );
            }
        }
        for p in parts.iter_mut() {
            if let Some(ack) = p.ack.take() {
                let _ = ack.send(result.clone());
            }
        }
    }

    fn write_and_sync(&mut self, frame: &[u8]) -> Result<(), JournalError> {
        self.file
            .append(frame)
            .map_err(|e| JournalError::io("append to the journal".into(), &e))?;
        if let Err(e) = self.file.sync() {
            let why = format!("fdatasync of the journal failed: {e}");
            tracing::error!(error = %e, "journal sync failed; refusing writes until restart");
            self.poisoned = Some(why);
            return Err(JournalError::io("sync the journal".into(), &e));
        }
        Ok(())
    }

    fn rotate(&mut self, next: u64) -> Result<(), JournalError> {
        let file = JournalFile::create(&self.dir, next, self.format_version).map_err(|e| {
            JournalError::io(format!("create journal file for generation {next}"), &e)
        })?;
        self.file = file;
        self.generation = next;
        for shard in 0..self.memtable.shard_count() {
            self.memtable.rotate(shard, next);
        }
        Ok(())
    }
}
