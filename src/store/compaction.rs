//! The write side of segments: one compaction round's transaction (`Compaction`), which
//! places each metric's last segment in its project's tail packs and earlier ones in
//! `segments`, writes catalog rows, expires old segments and commits with the watermark.

use super::tables::*;
use super::*;

/// Called with (segment start key, segment bytes); returns whether to go on.
pub type SegmentVisitor<'a, E> = dyn FnMut(i64, &[u8]) -> Result<bool, E> + 'a;

/// What `Compaction::expire_segments` removed from one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Expiry {
    Nothing,
    /// Some segments went; `row` describes the ones left.
    Some {
        samples: u64,
        row: CatalogRow,
    },
    /// Every segment went, and the catalog row with them.
    All {
        samples: u64,
    },
}

impl Store {
    /// Starts the one write transaction of a compaction round.
    pub fn begin_compaction(&self) -> Result<Compaction> {
        Ok(Compaction {
            txn: self.db()?.begin_write()?,
            tails: tails::TailRun::default(),
        })
    }
}

/// One compaction round: segments, catalog rows and the watermark commit together
/// (ARCHITECTURE.md invariant 4), or not at all if this is dropped uncommitted.
///
/// Callers see one set of segments per metric; this places them: a metric's last segment
/// (the greatest start) in its project's tail packs, every earlier one in `segments`. A store
/// written by format 6 may still hold a metric's last segment in `segments` with no tail;
/// the first put after it moves it. Puts and removals for one metric come in ascending
/// start order, metrics in ascending (project, metric) order for packs to stay full.
pub struct Compaction {
    txn: WriteTransaction,
    tails: tails::TailRun,
}

/// A round's edits, metric by metric, through its tables opened once (`Compaction::edits`):
/// opening a redb table for each call took 36 % of a round's CPU over 100,000 new series
/// (perf), about 4 µs a metric.
pub struct Edits<'c> {
    segments: redb::Table<'c, (&'static str, &'static str, i64), &'static [u8]>,
    tails_table: redb::Table<'c, (&'static str, &'static str), &'static [u8]>,
    catalog: redb::Table<'c, (&'static str, &'static str), &'static [u8]>,
    tails: &'c mut tails::TailRun,
}

impl Compaction {
    /// Opens the tables the round edits; drop the result before `commit`.
    pub fn edits(&mut self) -> Result<Edits<'_>> {
        Ok(Edits {
            segments: self.txn.open_table(SEGMENTS)?,
            tails_table: self.txn.open_table(TAILS)?,
            catalog: self.txn.open_table(CATALOG)?,
            tails: &mut self.tails,
        })
    }

    /// Commits a deletion or expiry round durably, leaving the watermark as it is.
    pub fn commit_data_only(mut self) -> Result<()> {
        self.tails.flush(&mut self.txn.open_table(TAILS)?)?;
        self.txn.commit()?;
        Ok(())
    }

    /// Records that every journal generation up to `generation` is in the segments, and
    /// commits the round durably.
    pub fn commit(mut self, generation: u64) -> Result<()> {
        self.tails.flush(&mut self.txn.open_table(TAILS)?)?;
        self.txn
            .open_table(META)?
            .insert(META_WATERMARK, generation.to_le_bytes().as_slice())?;
        self.txn.commit()?;
        Ok(())
    }
}

impl Edits<'_> {
    /// The metric's tail as this transaction has it: (start, bytes).
    fn tail(&mut self, project: &str, metric: &str) -> Result<Option<(i64, Vec<u8>)>> {
        Ok(self
            .tails
            .get(&mut self.tails_table, project, metric)?
            .map(|m| (m.start, m.bytes.clone())))
    }

    fn tail_start(&mut self, project: &str, metric: &str) -> Result<Option<i64>> {
        Ok(self
            .tails
            .get(&mut self.tails_table, project, metric)?
            .map(|m| m.start))
    }

    fn set_tail(
        &mut self,
        project: &str,
        metric: &str,
        tail: Option<(i64, Vec<u8>)>,
    ) -> Result<()> {
        self.tails.set(&mut self.tails_table, project, metric, tail)
    }

    /// Segments of `metric` that overlap `[from_ms, to_ms]`, as (start key, bytes), oldest
    /// first, plus the segment just before `from_ms` when `with_previous` is set.
    pub fn overlapping(
        &mut self,
        project: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
        with_previous: bool,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let tail = self.tail(project, metric)?;
        let t = &self.segments;
        let mut out = overlapping(t, project, metric, from_ms, to_ms)?;
        if let Some((start, bytes)) = tail.filter(|(start, _)| *start <= to_ms) {
            let summary =
                segment::read_summary(&bytes).map_err(|e| corrupt(project, metric, start, e))?;
            if summary.max_ts >= from_ms {
                out.push((start, bytes));
            } else if with_previous {
                // The tail ends before `from_ms` and every other segment before it.
                return Ok(vec![(start, bytes)]);
            }
        }
        if with_previous {
            let before = out.first().map(|(s, _)| *s).unwrap_or(from_ms);
            if let Some(row) = t
                .range((project, metric, i64::MIN)..(project, metric, before))?
                .next_back()
            {
                let (k, v) = row?;
                out.insert(0, (k.value().2, v.value().to_vec()));
            }
        }
        Ok(out)
    }

    pub fn remove_segment(&mut self, project: &str, metric: &str, start_ms: i64) -> Result<()> {
        if self.tail_start(project, metric)? == Some(start_ms) {
            return self.set_tail(project, metric, None);
        }
        self.segments.remove((project, metric, start_ms))?;
        Ok(())
    }

    /// Puts a segment of `metric` starting at `start_ms`, replacing one with that start.
    pub fn put_segment(
        &mut self,
        project: &str,
        metric: &str,
        start_ms: i64,
        bytes: &[u8],
    ) -> Result<()> {
        let tail_start = self.tail_start(project, metric)?;
        // A later segment than the tail: the old tail becomes an ordinary one.
        let demoted = match tail_start {
            Some(start) if start_ms > start => self.tail(project, metric)?,
            _ => None,
        };
        let segments = &mut self.segments;
        if let Some((start, old)) = demoted {
            segments.insert((project, metric, start), old.as_slice())?;
        }
        let last = match tail_start {
            Some(start) if start_ms < start => {
                segments.insert((project, metric, start_ms), bytes)?;
                return Ok(());
            }
            Some(_) => None,
            // No tail: the metric's last segment, if any, is in `segments` (format 6).
            None => match segments
                .range((project, metric, i64::MIN)..=(project, metric, i64::MAX))?
                .next_back()
            {
                Some(row) => Some(row?.0.value().2),
                None => None,
            },
        };
        if last.is_some_and(|l| start_ms < l) {
            segments.insert((project, metric, start_ms), bytes)?;
            return Ok(());
        }
        if last == Some(start_ms) {
            segments.remove((project, metric, start_ms))?;
        }
        self.set_tail(project, metric, Some((start_ms, bytes.to_vec())))
    }

    pub fn catalog_row(&self, project: &str, metric: &str) -> Result<Option<CatalogRow>> {
        let out = match self.catalog.get((project, metric))? {
            Some(v) => Some(CatalogRow::decode(v.value())?),
            None => None,
        };
        Ok(out)
    }

    pub fn put_catalog_row(&mut self, project: &str, metric: &str, row: &CatalogRow) -> Result<()> {
        self.catalog
            .insert((project, metric), row.encode().as_slice())?;
        Ok(())
    }

    /// Removes every segment and the catalog row of a metric; returns how many segments
    /// there were.
    pub fn remove_metric(&mut self, project: &str, metric: &str) -> Result<usize> {
        let tail = usize::from(self.tail_start(project, metric)?.is_some());
        self.set_tail(project, metric, None)?;
        let t = &mut self.segments;
        let starts: Vec<i64> = t
            .range((project, metric, i64::MIN)..=(project, metric, i64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().2))
            .collect::<Result<_, _>>()?;
        for start in &starts {
            t.remove((project, metric, *start))?;
        }
        self.catalog.remove((project, metric))?;
        Ok(starts.len() + tail)
    }

    /// Removes the metric's segments whose samples all precede `cutoff_ms` (whole segments
    /// only: a segment straddling the cutoff stays) and updates its catalog row, removing it
    /// when no segment is left.
    pub fn expire_segments(
        &mut self,
        project: &str,
        metric: &str,
        cutoff_ms: i64,
    ) -> Result<Expiry> {
        let tail = self.tail(project, metric)?;
        let t = &mut self.segments;
        let mut gone: Vec<(i64, u64)> = Vec::new();
        let mut kept_one = false;
        for row in t.range((project, metric, i64::MIN)..(project, metric, cutoff_ms))? {
            let (k, v) = row?;
            let start = k.value().2;
            let summary =
                segment::read_summary(v.value()).map_err(|e| corrupt(project, metric, start, e))?;
            if summary.max_ts >= cutoff_ms {
                kept_one = true;
                break;
            }
            gone.push((start, u64::from(summary.count)));
        }
        for (start, _) in &gone {
            t.remove((project, metric, *start))?;
        }
        // The tail is the last segment: it can go only when every other one does.
        let mut tail_gone = false;
        if let Some((start, bytes)) = &tail {
            let summary =
                segment::read_summary(bytes).map_err(|e| corrupt(project, metric, *start, e))?;
            if !kept_one && summary.max_ts < cutoff_ms {
                tail_gone = true;
                gone.push((*start, u64::from(summary.count)));
            }
        }
        if gone.is_empty() {
            return Ok(Expiry::Nothing);
        }
        let removed: u64 = gone.iter().map(|(_, n)| n).sum();
        let next_first = match t
            .range((project, metric, i64::MIN)..=(project, metric, i64::MAX))?
            .next()
        {
            Some(row) => Some(row?.0.value().2),
            None if tail_gone => None,
            None => tail.as_ref().map(|(start, _)| *start),
        };
        if tail_gone {
            self.set_tail(project, metric, None)?;
        }
        let catalog = &mut self.catalog;
        let row: Option<CatalogRow> = match catalog.get((project, metric))? {
            Some(v) => Some(CatalogRow::decode(v.value())?),
            None => None,
        };
        let Some(mut row) = row else {
            return Err(StoreError::Corrupt(format!(
                "({project}, {metric}) has segments but no catalog row"
            )));
        };
        match next_first {
            None => {
                catalog.remove((project, metric))?;
                Ok(Expiry::All { samples: removed })
            }
            Some(first) => {
                row.first_timestamp = first;
                row.count = row.count.saturating_sub(removed);
                catalog.insert((project, metric), to_json(&row).as_slice())?;
                Ok(Expiry::Some {
                    samples: removed,
                    row,
                })
            }
        }
    }
}

fn overlapping(
    t: &impl ReadableTable<(&'static str, &'static str, i64), &'static [u8]>,
    project: &str,
    metric: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, Vec<u8>)>> {
    // Segments of one metric never overlap and are keyed by their first timestamp, so their
    // ends are sorted too: walk back from the last start <= to_ms until an end < from_ms.
    let mut out = Vec::new();
    for row in t
        .range((project, metric, i64::MIN)..=(project, metric, to_ms))?
        .rev()
    {
        let (k, v) = row?;
        let start = k.value().2;
        let bytes = v.value();
        let summary =
            segment::read_summary(bytes).map_err(|e| corrupt(project, metric, start, e))?;
        if summary.max_ts < from_ms {
            break;
        }
        out.push((start, bytes.to_vec()));
    }
    out.reverse();
    Ok(out)
}
