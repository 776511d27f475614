//! Compaction: moves sealed journal generations into columnar segments in the store.
//! `policy` decides (pure), `worker` does it. A round is idempotent: segments, catalog rows
//! and the watermark commit in one redb transaction, journal files are deleted only after
//! that commit, and replaying a generation twice yields the same segments.

pub mod policy;
mod worker;

pub use worker::{
    compact_once, compact_round, delete_metric, expire_once, spawn, CompactStats, CompactorHandle,
    Schedule,
};
