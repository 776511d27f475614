//! Segment: the immutable, columnar encoding of one metric's samples over a time range.
//!
//! Owns the byte layout described in `docs/format.md` ("Segment value"). Pure: no I/O, no
//! clock, no redb — `store` decides where the bytes live, `compact` decides what goes in.
//! A segment is a header (summary of the whole segment, then one entry per block with the
//! block's own summary, length and checksum, all covered by a header checksum) followed by
//! blocks of `BLOCK_SAMPLES` samples (the last may hold fewer). Each block holds three
//! columns: timestamps (delta-of-delta), values (deltas of integers or scaled decimals,
//! XOR-coded or raw f64), metadata (a dictionary per block); `column` picks each integer
//! column's encoding. A query folds whole blocks from their summaries and decodes only the
//! blocks a bucket boundary cuts. Versions 1–3 are still read; version 4 writes a block's
//! summary as differences from the previous block's and leaves its first timestamp and
//! value out of the body.

mod append;
mod column;
mod decode;
mod encode;
mod layout;
mod legacy;
mod reader;
mod summary;
mod table;
#[cfg(test)]
mod tests;
mod varint;
mod xor;

use std::borrow::Cow;

pub use append::append;
pub use decode::{contains_timestamp, decode, decode_block, decode_columns, Columns};
pub use encode::encode;
pub use layout::Layout;
pub use summary::{as_decimal, from_decimal, summarize};
pub use table::{blocks, checked_summary, read_summary, Block};
pub use varint::{get_varint, put_varint, unzigzag, varint_len, zigzag};
// What the parts share with one another (each part reads the others' items through `super`).
use self::{decode::*, encode::*, legacy::*, reader::*, summary::*};

/// Version byte at the start of every segment value. Bump when the layout changes and keep a
/// decoder for every older version (old files must keep opening).
pub const SEGMENT_VERSION: u8 = 4;

/// Version 3 (store formats 4–7): as 4, but each block entry holds its whole compact summary
/// and each block body its own first timestamp and value (docs/format.md).
const SEGMENT_V3: u8 = 3;

/// Samples per block, as written (a reader accepts blocks up to `MAX_SEGMENT_SAMPLES`).
/// Decoding the blocks that bucket boundaries cut is most of a query's time: 1024 instead of
/// 2048 took `avg` into 500 buckets over 10 M samples from 4.6 to 3.1 ms, for a block table
/// of 68 bytes per 1024 samples (~0.07 bytes/sample).
pub const BLOCK_SAMPLES: usize = 1024;

/// Segments of at most this many samples are written in the small form: no summary and no
/// block table, one checksum over the whole value; readers decode them to summarize them
/// (a few µs). At 50,000 metrics of 20 samples the summary was a third of each segment.
pub const SMALL_SEGMENT_SAMPLES: usize = 64;

/// Largest number of samples in one segment (store format 7; 32,768 in format 6, 8192
/// before). The compactor cuts segments to fill a two-page redb leaf
/// (`compact::policy::encode_to_fit`), so this cap binds only for series that compress
/// very well (a regular constant: ~3 KB for 65,536 samples, ~7.6 days at 10 s spacing). At
/// 32,768 it bound for a 2-decimal gauge moving ±1.00 (~5.6 KB), whose segments then left
/// 30 % of their 8 KiB leaves empty. Reads decode block by block (1024 samples).
pub const MAX_SEGMENT_SAMPLES: usize = 65536;

/// One stored sample of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
    /// Compact JSON text of the sample's `metadata` object, if it had one.
    pub metadata: Option<Box<str>>,
}

/// What a segment knows about itself without decoding its columns; kept in the header so a
/// query can answer whole-segment aggregates and prune by time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub first: f64,
    pub last: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// The version byte is newer than this build knows.
    UnknownVersion(u8),
    /// The checksum does not match the bytes: the segment is damaged.
    Checksum,
    /// The bytes end early or a field is out of range (names which field).
    Malformed(&'static str),
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentError::UnknownVersion(v) => {
                write!(
                    f,
                    "segment version {v} is newer than this stathook; upgrade stathook"
                )
            }
            SegmentError::Checksum => write!(f, "segment checksum mismatch"),
            SegmentError::Malformed(what) => write!(f, "malformed segment: {what}"),
        }
    }
}

impl std::error::Error for SegmentError {}

const TS_CODEC_DOD: u8 = 1;
/// As `TS_CODEC_DOD`, with runs of zeros collapsed (store format 3).
const TS_CODEC_DOD_RUNS: u8 = 2;
const VALUE_CODEC_RAW: u8 = 0;
const VALUE_CODEC_INT_DELTA: u8 = 1;
/// Values that are decimals with at most `MAX_DECIMAL_DIGITS` fractional digits (prices,
/// percentages, 2-decimal gauges): one byte `e`, then zigzag varint deltas of the integers
/// `m = v × 10^e`; each value decodes as `m / 10^e`, bit-exact (checked when encoding).
/// Store format 3.
const VALUE_CODEC_DECIMAL_DELTA: u8 = 2;
const MAX_DECIMAL_DIGITS: usize = 9;
/// Largest metadata dictionary text per sample of a block: a sample's metadata is at most
/// 4 KiB (the webhook's limit), plus its length varint.
const METADATA_MAX_PER_SAMPLE: usize = 4096 + 3;
/// `VALUE_CODEC_INT_DELTA` and `VALUE_CODEC_DECIMAL_DELTA` with runs of zeros collapsed
/// (store format 3).
const VALUE_CODEC_INT_DELTA_RUNS: u8 = 3;
const VALUE_CODEC_DECIMAL_DELTA_RUNS: u8 = 4;
/// 10^e, exact in f64 for every e used.
const POW10: [f64; MAX_DECIMAL_DIGITS + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Version 3 blocks: what the values column holds, and whether a metadata dictionary follows.
const VALUES_RAW: u8 = 0;
const VALUES_INT: u8 = 1;
const VALUES_DECIMAL: u8 = 2;
/// Gorilla XOR coding (`xor.rs`), kept where smaller than raw f64 (store format 5).
const VALUES_XOR: u8 = 3;
const METADATA_NONE: u8 = 0;
const METADATA_DICTIONARY: u8 = 1;
const META_CODEC_NONE: u8 = 0;
const META_CODEC_LEN_PREFIXED: u8 = 1;
/// Integers above 2^53 are not exact in f64, so the integer codec stops there.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;
const HEADER_LEN: usize = 1 + 4 + 8 * 7;
/// count u32, min_ts i64, max_ts i64, five f64, body length u32, body CRC-32 u32.
const BLOCK_ENTRY_LEN: usize = 4 + 8 * 7 + 4 + 4;
