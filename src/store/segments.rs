//! Reading segments: the scan a query merges, the point lookup, the offline checksum check
//! and the size accounting of `stathook check --sizes`. Writing them is `compaction.rs`'s.

use super::tables::*;
use super::*;

impl Store {
    /// Calls `visit(start_ms, bytes)` with every segment of `metric` that may hold samples in
    /// `[from_ms, to_ms]`, oldest first, until it returns `Ok(false)`. Segments of one metric
    /// never overlap in time, so the concatenation is one ordered stream. Decoding is the
    /// caller's: a query may answer from the header summary alone.
    pub fn scan_segments<E: From<StoreError>>(
        &self,
        project: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
        visit: &mut SegmentVisitor<'_, E>,
    ) -> Result<(), E> {
        if from_ms > to_ms {
            return Ok(());
        }
        let txn = self.db()?.begin_read().map_err(StoreError::from)?;
        // The metric's last segment, when it is in a tail pack, starts after every one in
        // `segments` (and so ends after them too).
        let tails = txn.open_table(TAILS).map_err(StoreError::from)?;
        let pack = tails::pack_for(&tails, project, metric)?;
        let tail = match &pack {
            Some(v) => tails::find(v.value(), metric)?.filter(|(start, _)| *start <= to_ms),
            None => None,
        };
        if let Some((start, bytes)) = tail.filter(|(start, _)| *start <= from_ms) {
            // Every other segment ends before the tail starts, so before `from_ms`.
            visit(start, bytes)?;
            return Ok(());
        }
        let t = txn.open_table(SEGMENTS).map_err(StoreError::from)?;
        // The segment starting at or before `from_ms` may reach into the range; every later
        // one starting by `to_ms` does.
        let first = t
            .range((project, metric, i64::MIN)..=(project, metric, from_ms))
            .map_err(StoreError::from)?
            .next_back();
        let rest = match from_ms {
            i64::MAX => None,
            _ => Some(
                t.range((project, metric, from_ms + 1)..=(project, metric, to_ms))
                    .map_err(StoreError::from)?,
            ),
        };
        for row in first.into_iter().chain(rest.into_iter().flatten()) {
            let (k, v) = row.map_err(StoreError::from)?;
            if !visit(k.value().2, v.value())? {
                return Ok(());
            }
        }
        if let Some((start, bytes)) = tail {
            visit(start, bytes)?;
        }
        Ok(())
    }

    /// Whether a segment of `metric` holds a sample at exactly `ts` (decodes at most one
    /// segment's timestamp column).
    pub fn contains(&self, project: &str, metric: &str, ts: i64) -> Result<bool> {
        let txn = self.db()?.begin_read()?;
        if let Some((start, bytes)) = tails::lookup(&txn.open_table(TAILS)?, project, metric)? {
            if start <= ts {
                return segment::contains_timestamp(&bytes, ts)
                    .map_err(|e| corrupt(project, metric, start, e));
            }
        }
        let t = txn.open_table(SEGMENTS)?;
        let last = t
            .range((project, metric, i64::MIN)..=(project, metric, ts))?
            .next_back();
        match last {
            None => Ok(false),
            Some(row) => {
                let (k, v) = row?;
                segment::contains_timestamp(v.value(), ts)
                    .map_err(|e| corrupt(project, metric, k.value().2, e))
            }
        }
    }

    /// Verifies the checksum of every segment; returns the (project, metric, start) of each
    /// damaged one with its error.
    pub fn check_segments(&self) -> Result<(u64, Vec<String>)> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SEGMENTS)?;
        let (mut checked, mut bad) = (0u64, Vec::new());
        for row in t.iter()? {
            let (k, v) = row?;
            checked += 1;
            if let Err(e) = segment::decode(v.value()) {
                let (p, m, s) = k.value();
                bad.push(corrupt(p, m, s, e).to_string());
            }
        }
        for row in txn.open_table(TAILS)?.iter()? {
            let (k, v) = row?;
            let (p, first) = k.value();
            match tails::decode(v.value()) {
                Err(e) => bad.push(format!("tail pack ({p}, {first}): {e}")),
                Ok(members) => {
                    for (m, s, bytes) in members {
                        checked += 1;
                        if let Err(e) = segment::decode(bytes) {
                            bad.push(corrupt(p, &m, s, e).to_string());
                        }
                    }
                }
            }
        }
        Ok((checked, bad))
    }

    /// Where the store's bytes go, table by table and, inside segments (in `segments` and
    /// in tail packs), part by part (`stathook check --sizes`).
    pub fn sizes(&self) -> Result<Sizes> {
        use redb::{ReadableTableMetadata, TableHandle};
        let txn = self.db()?.begin_read()?;
        let mut out = Sizes::default();
        let mut table = |name: &'static str, stats: redb::TableStats, rows: u64| {
            out.tables.push(TableSize {
                name,
                rows,
                stored_bytes: stats.stored_bytes(),
                in_pages: stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes(),
            });
        };
        macro_rules! plain_table {
            ($def:expr) => {{
                let t = txn.open_table($def)?;
                table($def.name(), t.stats()?, t.len()?);
            }};
        }
        plain_table!(META);
        plain_table!(PROJECTS);
        plain_table!(WEBHOOKS);
        plain_table!(API_KEYS);
        plain_table!(USAGE);
        plain_table!(CATALOG);
        let segments = txn.open_table(SEGMENTS)?;
        table(SEGMENTS.name(), segments.stats()?, segments.len()?);
        for row in segments.iter()? {
            let (k, v) = row?;
            let (p, m, s) = k.value();
            out.segments
                .add(v.value())
                .map_err(|e| corrupt(p, m, s, e))?;
        }
        let tails_table = txn.open_table(TAILS)?;
        table(TAILS.name(), tails_table.stats()?, tails_table.len()?);
        for row in tails_table.iter()? {
            let (k, v) = row?;
            let (p, _) = k.value();
            let members = tails::decode(v.value())?;
            let mut in_members = 0;
            for (m, s, bytes) in members {
                out.segments.add(bytes).map_err(|e| corrupt(p, &m, s, e))?;
                in_members += bytes.len() as u64;
            }
            out.tail_pack_framing += v.value().len() as u64 - in_members;
        }
        Ok(out)
    }
}

/// What `Store::sizes` found.
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    pub tables: Vec<TableSize>,
    /// Every segment, in `segments` and in tail packs.
    pub segments: segment::Layout,
    /// Tail pack bytes outside their member segments: pack header, metricIds, start times.
    pub tail_pack_framing: u64,
}

/// One redb table: its rows, the bytes of their keys and values, and the pages it takes.
#[derive(Clone, Debug)]
pub struct TableSize {
    pub name: &'static str,
    pub rows: u64,
    pub stored_bytes: u64,
    /// The bytes of its leaf and branch pages: keys and values, redb's page headers and
    /// branch entries, and the unused room in its pages.
    pub in_pages: u64,
}
