//! One journal shard: a queue behind a parking_lot mutex and the writer thread that drains
//! it. Group commit: the writer takes everything queued, writes it with one `write`, syncs
//! once with fdatasync, applies it to the memtable, then acknowledges each request. Requests
//! that arrive during a sync wait in the queue and share the next one.

use super::file::JournalFile;
use super::record::decode_frame;
use super::JournalError;
use crate::memtable::{Memtable, NewSample};
use crate::store::Store;
use parking_lot::{Condvar, Mutex};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A framed record waiting for its sync, with the request's acknowledgement channel.
type Pending = (Vec<u8>, oneshot::Sender<Result<(), JournalError>>);

pub(crate) enum Command {
    /// One framed record (already encoded by the request's task) and who to tell.
    Append {
        record: Vec<u8>,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Seal the current file and start generation `.0`; answer when done.
    Rotate(u64, std::sync::mpsc::Sender<Result<(), JournalError>>),
    Stop,
}

pub(crate) struct ShardQueue {
    pub commands: Mutex<Vec<Command>>,
    pub wake: Condvar,
}

impl ShardQueue {
    pub fn new() -> ShardQueue {
        ShardQueue {
            commands: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }
    }

    pub fn push(&self, cmd: Command) {
        self.commands.lock().push(cmd);
        self.wake.notify_one();
    }
}

pub(crate) struct Writer {
    pub shard: usize,
    pub dir: PathBuf,
    pub generation: u64,
    pub file: JournalFile,
    pub queue: Arc<ShardQueue>,
    pub memtable: Arc<Memtable>,
    pub store: Arc<Store>,
    pub format_version: u32,
    /// Set after a failed fdatasync: the kernel may have dropped the dirty pages, so nothing
    /// written since the last good sync can be trusted. Refuse appends until a restart.
    pub poisoned: Option<String>,
}

impl Writer {
    pub fn run(mut self) {
        let mut batch = Vec::new();
        loop {
            {
                let mut q = self.queue.commands.lock();
                while q.is_empty() {
                    self.queue.wake.wait(&mut q);
                }
                std::mem::swap(&mut *q, &mut batch);
            }
            let mut group = Vec::new();
            for cmd in batch.drain(..) {
                match cmd {
                    Command::Append { record, ack } => group.push((record, ack)),
                    Command::Rotate(next, done) => {
                        self.commit(std::mem::take(&mut group));
                        let _ = done.send(self.rotate(next));
                    }
                    Command::Stop => {
                        self.commit(group);
                        return;
                    }
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        if let Some(why) = &self.poisoned {
            for (_, ack) in group {
                let _ = ack.send(Err(JournalError::Poisoned {
                    shard: self.shard,
                    why: why.clone(),
                }));
            }
            return;
        }
        let result = self.write_and_sync(&group);
        match result {
            Ok(()) => {
                let store = &self.store;
                let mut in_segments =
                    |p: &str, m: &str, ts: i64| store.contains(p, m, ts).unwrap_or(false);
                for (record, _) in &group {
                    let (rec, _) = decode_frame(record)
                        .expect("BUG: a record this process encoded does not decode");
                    self.memtable.apply(
                        self.shard,
                        self.generation,
                        rec.project,
                        rec.samples.iter().map(|s| NewSample {
                            metric_id: s.metric_id,
                            metric_name: s.metric_name,
                            unit: s.unit,
                            timestamp_ms: s.timestamp_ms,
                            value: s.value,
                            metadata: s.metadata,
                        }),
                        &mut in_segments,
                    );
                }
                for (_, ack) in group {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                for (_, ack) in group {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }

    fn write_and_sync(&mut self, group: &[Pending]) -> Result<(), JournalError> {
        let total: usize = group.iter().map(|(r, _)| r.len()).sum();
        let mut buf = Vec::with_capacity(total);
        for (r, _) in group {
            buf.extend_from_slice(r);
        }
        self.file
            .append(&buf)
            .map_err(|e| JournalError::io(format!("append to journal shard {}", self.shard), &e))?;
        if let Err(e) = self.file.sync() {
            let why = format!("fdatasync of journal shard {} failed: {e}", self.shard);
            tracing::error!(shard = self.shard, error = %e, "journal sync failed; shard refuses writes until restart");
            self.poisoned = Some(why);
            return Err(JournalError::io(
                format!("sync journal shard {}", self.shard),
                &e,
            ));
        }
        Ok(())
    }

    fn rotate(&mut self, next: u64) -> Result<(), JournalError> {
        let file = JournalFile::create(&self.dir, self.shard, next, self.format_version).map_err(
            |e: io::Error| {
                JournalError::io(
                    format!(
                        "create journal file for shard {} generation {next}",
                        self.shard
                    ),
                    &e,
                )
            },
        )?;
        self.file = file;
        self.generation = next;
        self.memtable.rotate(self.shard, next);
        Ok(())
    }
}
