//! Tail packs: the last segment of many metrics of one project side by side in one value of
//! the `tails` table, so that a short or still-growing segment does not take a redb leaf of
//! its own (a leaf is at least one 4 KiB page). Owns the pack encoding and `TailRun`, which
//! applies a transaction's tail edits pack by pack. It does not decode segments (`segment`)
//! nor decide which segment is a metric's last (`Compaction` in the parent module does).
//!
//! The packs of a project partition its metricIds: a pack is keyed by its first member's
//! metricId and holds every tail from there up to the next pack's key, so a metric's tail is
//! in the pack with the greatest key at or below it (docs/format.md, "Tail packs").

use super::{Result, StoreError};
use crate::segment::{get_varint, put_varint, unzigzag, varint_len, zigzag};
use redb::{AccessGuard, ReadableTable, Table};

/// Pack encoding version, the first byte of every pack: 2 front-codes metricIds and writes
/// first timestamps as differences (store format 9); 1 (formats 7–8) is still read.
const PACK_VERSION: u8 = 2;
const PACK_V1: u8 = 1;
/// The redb leaf a full pack fills: eight pages. Large enough that cutting packs between
/// whole tails (each at most one segment budget, ~8 KB) wastes only a few per cent.
const PACK_LEAF_BYTES: usize = 32 * 1024;
/// What the leaf spends besides the pack (see `compact::policy::LEAF_OVERHEAD`).
const LEAF_OVERHEAD: usize = 48;

/// The bytes a pack keyed by (`project`, `first`) may take so that it fills its leaf.
pub fn pack_budget(project: &str, first: &str) -> usize {
    PACK_LEAF_BYTES.saturating_sub(LEAF_OVERHEAD + project.len() + first.len())
}

/// One metric's tail: its last segment and the segment's first timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub metric: String,
    pub start: i64,
    pub bytes: Vec<u8>,
}

impl Member {
    /// How this member is framed after `prev` (None: first in its pack): the bytes of
    /// metricId it shares with `prev`'s, and its first timestamp less `prev`'s.
    fn framing(&self, prev: Option<&Member>) -> (usize, i64) {
        match prev {
            None => (0, self.start),
            Some(p) => (
                shared_prefix(&p.metric, &self.metric),
                self.start.wrapping_sub(p.start),
            ),
        }
    }

    /// The bytes this member takes inside a pack, after `prev`.
    fn encoded_len(&self, prev: Option<&Member>) -> usize {
        let (shared, start_delta) = self.framing(prev);
        let suffix = self.metric.len() - shared;
        varint_len(shared as u64)
            + varint_len(suffix as u64)
            + suffix
            + varint_len(zigzag(start_delta))
            + varint_len(self.bytes.len() as u64)
            + self.bytes.len()
    }
}

/// The length of the longest common prefix of `a` and `b` that ends on a character
/// boundary (so both halves of `b` stay UTF-8).
fn shared_prefix(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !b.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Encodes members (ascending by metric, at least one) as a pack.
pub fn encode(members: &[Member]) -> Vec<u8> {
    let body: usize = members
        .iter()
        .enumerate()
        .map(|(i, m)| m.encoded_len(i.checked_sub(1).map(|p| &members[p])))
        .sum();
    let mut out = Vec::with_capacity(4 + body);
    out.push(PACK_VERSION);
    put_varint(&mut out, members.len() as u64);
    let mut prev = None;
    for m in members {
        let (shared, start_delta) = m.framing(prev);
        let suffix = &m.metric.as_bytes()[shared..];
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, suffix.len() as u64);
        out.extend_from_slice(suffix);
        put_varint(&mut out, zigzag(start_delta));
        put_varint(&mut out, m.bytes.len() as u64);
        out.extend_from_slice(&m.bytes);
        prev = Some(m);
    }
    out
}

/// The members of a pack, in order: (metric, start, segment bytes). Refuses a pack that is
/// cut off, has trailing bytes, an unknown version, or members out of order.
pub fn decode(pack: &[u8]) -> Result<Vec<(String, i64, &[u8])>> {
    let mut out = Vec::new();
    walk(pack, |metric, start, bytes| {
        out.push((metric.to_owned(), start, bytes));
        true
    })?;
    Ok(out)
}

/// Calls `visit(metric, start, segment bytes)` for each member in order, until it returns
/// false; checks what it passes (see `decode`), and the whole pack if `visit` never stops.
fn walk<'a>(pack: &'a [u8], mut visit: impl FnMut(&str, i64, &'a [u8]) -> bool) -> Result<()> {
    let bad = |what: &str| StoreError::Corrupt(format!("tail pack: {what}"));
    let (&version, mut rest) = pack.split_first().ok_or_else(|| bad("empty"))?;
    if version != PACK_VERSION && version != PACK_V1 {
        return Err(bad(&format!("unknown version {version}")));
    }
    let (count, used) = get_varint(rest).ok_or_else(|| bad("cut off count"))?;
    rest = &rest[used..];
    // A member takes at least 10 bytes in version 1 and 4 in version 2: a count beyond
    // that is damage.
    let least = if version == PACK_V1 { 10 } else { 4 };
    if count == 0 || count > rest.len() as u64 / least {
        return Err(bad(&format!("{count} members in {} bytes", rest.len())));
    }
    // The previous member's metricId and first timestamp (version 2 codes against them).
    let mut metric = String::new();
    let mut start = 0i64;
    for i in 0..count {
        let cut = || bad(&format!("member {i} cut off"));
        let not_utf8 = || bad(&format!("member {i}: metricId is not UTF-8"));
        let prev_len = metric.len();
        if version == PACK_V1 {
            let raw = take_prefixed(&mut rest).ok_or_else(cut)?;
            let raw = std::str::from_utf8(raw).map_err(|_| not_utf8())?;
            if i > 0 && metric.as_str() >= raw {
                return Err(bad(&format!("member {i} ({raw}) out of order")));
            }
            metric.clear();
            metric.push_str(raw);
            start = i64::from_le_bytes(rest.get(..8).ok_or_else(cut)?.try_into().unwrap());
            rest = &rest[8..];
        } else {
            let (shared, used) = get_varint(rest).ok_or_else(cut)?;
            rest = &rest[used..];
            let shared = usize::try_from(shared).unwrap_or(usize::MAX);
            if shared > prev_len || !metric.is_char_boundary(shared) {
                return Err(bad(&format!("member {i}: shared prefix {shared}")));
            }
            let suffix = take_prefixed(&mut rest).ok_or_else(cut)?;
            let suffix = std::str::from_utf8(suffix).map_err(|_| not_utf8())?;
            // Equal up to `shared`; ascending means the suffix sorts after the rest of the
            // previous metricId.
            if i > 0 && &metric[shared..] >= suffix {
                return Err(bad(&format!("member {i} out of order")));
            }
            metric.truncate(shared);
            metric.push_str(suffix);
            let (delta, used) = get_varint(rest).ok_or_else(cut)?;
            rest = &rest[used..];
            start = start.wrapping_add(unzigzag(delta));
        }
        let segment = take_prefixed(&mut rest).ok_or_else(cut)?;
        if !visit(&metric, start, segment) {
            return Ok(());
        }
    }
    if !rest.is_empty() {
        return Err(bad(&format!("{} bytes after the last member", rest.len())));
    }
    Ok(())
}

/// Takes a varint length and that many bytes off the front of `rest`; None if cut off.
fn take_prefixed<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, used) = get_varint(rest)?;
    let len = usize::try_from(len).ok()?;
    let body = rest.get(used..used.checked_add(len)?)?;
    *rest = &rest[used + len..];
    Some(body)
}

/// The tail of `metric` in `pack`, if it has one: (start, segment bytes).
/// Stops at the first member past it (members ascend), without allocating per member.
pub fn find<'a>(pack: &'a [u8], metric: &str) -> Result<Option<(i64, &'a [u8])>> {
    let mut found = None;
    walk(pack, |m, start, bytes| match m.cmp(metric) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => {
            found = Some((start, bytes));
            false
        }
        std::cmp::Ordering::Greater => false,
    })?;
    Ok(found)
}

/// The pack that would hold the tail of (`project`, `metric`): the one with the greatest
/// key at or below it.
pub fn pack_for<'t>(
    t: &'t impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    project: &str,
    metric: &str,
) -> Result<Option<AccessGuard<'t, &'static [u8]>>> {
    match t.range((project, "")..=(project, metric))?.next_back() {
        Some(row) => Ok(Some(row?.1)),
        None => Ok(None),
    }
}

/// The tail of (`project`, `metric`) in a `tails` table (read or write transaction).
pub fn lookup(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    project: &str,
    metric: &str,
) -> Result<Option<(i64, Vec<u8>)>> {
    let Some(pack) = pack_for(t, project, metric)? else {
        return Ok(None);
    };
    Ok(find(pack.value(), metric)?.map(|(s, b)| (s, b.to_vec())))
}

/// What a pack spends before its members, at most: a version byte and a count of up to
/// three varint bytes.
const PACK_PREFIX_BYTES: usize = 4;

/// How many members from the front of `members` make one pack: the longest prefix (at
/// least one member) that fits the budget of a pack keyed by its first member. The
/// reference for `TailRun::front_pack_len`, which finds the same cut incrementally.
#[cfg(test)]
fn first_pack_len(project: &str, members: &[Member]) -> usize {
    let Some(first) = members.first() else {
        return 0;
    };
    let budget = pack_budget(project, &first.metric);
    let mut used = PACK_PREFIX_BYTES;
    let mut n = 0;
    for (i, m) in members.iter().enumerate() {
        used += m.encoded_len(i.checked_sub(1).map(|p| &members[p]));
        if used > budget && n > 0 {
            break;
        }
        n += 1;
    }
    n
}

/// A transaction's tail edits, applied pack by pack. The packs covering the metrics being
/// edited are loaded (and removed from the table) into a run of members; members that no
/// later edit can reach are written back as full packs as the edits move on, and `flush`
/// cuts and writes the rest. Edits in ascending (project, metric) order, as compaction
/// makes them, rewrite each touched pack once and cut consecutive touched packs as one
/// sequence, so packs stay full; edits in any other order are correct, only slower.
#[derive(Default)]
pub struct TailRun {
    /// Whether the fields below describe loaded packs.
    active: bool,
    project: String,
    /// The run covers metricIds in `[start, end)`: `start` is the key of the first pack
    /// loaded (or "" when no pack lies below the first edit), `end` the key of the next pack
    /// still in the table (None: no later pack in the project).
    start: String,
    end: Option<String>,
    /// The tails of the covered metrics, ascending, edits applied.
    members: Vec<Member>,
    /// `sizes[i]`: the bytes of a pack of `members[..=i]`, for a prefix of the members that
    /// no edit has touched since it was measured. Measuring the front pack afresh at every
    /// edit walked the whole pack each time: 21 % of a compaction's CPU over 100,000 new
    /// series (perf); kept, each edit measures about one member.
    sizes: Vec<usize>,
}

type TailsTable<'t> = Table<'t, (&'static str, &'static str), &'static [u8]>;

impl TailRun {
    /// The tail of (`project`, `metric`), with this run's edits applied.
    pub fn get(
        &mut self,
        t: &mut TailsTable,
        project: &str,
        metric: &str,
    ) -> Result<Option<&Member>> {
        self.cover(t, project, metric)?;
        Ok(self
            .members
            .binary_search_by(|m| m.metric.as_str().cmp(metric))
            .ok()
            .map(|i| &self.members[i]))
    }

    /// Sets (Some) or removes (None) the tail of (`project`, `metric`) as (start, bytes).
    pub fn set(
        &mut self,
        t: &mut TailsTable,
        project: &str,
        metric: &str,
        tail: Option<(i64, Vec<u8>)>,
    ) -> Result<()> {
        self.cover(t, project, metric)?;
        let at = self
            .members
            .binary_search_by(|m| m.metric.as_str().cmp(metric));
        // The edited member's size changes, and so does the next one's (its shared prefix).
        self.sizes.truncate(match at {
            Ok(i) | Err(i) => i,
        });
        match (at, tail) {
            (Ok(i), Some((start, bytes))) => {
                self.members[i].start = start;
                self.members[i].bytes = bytes;
            }
            (Err(i), Some((start, bytes))) => self.members.insert(
                i,
                Member {
                    metric: metric.to_owned(),
                    start,
                    bytes,
                },
            ),
            (Ok(i), None) => {
                self.members.remove(i);
            }
            (Err(_), None) => {}
        }
        self.write_front(t, Some(metric))
    }

    /// Cuts every member of the run into packs and writes them; the run is empty after.
    pub fn flush(&mut self, t: &mut TailsTable) -> Result<()> {
        if self.active {
            self.write_front(t, None)?;
        }
        self.active = false;
        Ok(())
    }

    /// Makes the run cover (`project`, `metric`): extends it over the next pack when that
    /// is the one holding `metric`, else flushes it and loads the pack that does.
    fn cover(&mut self, t: &mut TailsTable, project: &str, metric: &str) -> Result<()> {
        if self.active && self.project == project && metric >= self.start.as_str() {
            loop {
                let Some(end) = self.end.clone() else {
                    return Ok(());
                };
                if metric < end.as_str() {
                    return Ok(());
                }
                let after = next_key(t, project, &end)?;
                if after.as_deref().is_some_and(|a| metric >= a) {
                    // Beyond the next pack too: do not load packs no edit touches.
                    break;
                }
                self.load(t, &end)?;
                self.end = after;
            }
        }
        self.flush(t)?;
        let below = match t.range((project, "")..=(project, metric))?.next_back() {
            Some(row) => Some(row?.0.value().1.to_owned()),
            None => None,
        };
        self.active = true;
        self.project = project.to_owned();
        self.members.clear();
        self.sizes.clear();
        match below {
            Some(key) => {
                self.end = next_key(t, project, &key)?;
                self.load(t, &key)?;
                self.start = key;
            }
            None => {
                self.start = String::new();
                self.end = match t.range((project, "")..)?.next() {
                    Some(row) => {
                        let row = row?;
                        let (p, m) = row.0.value();
                        (p == project).then(|| m.to_owned())
                    }
                    None => None,
                };
            }
        }
        Ok(())
    }

    /// Moves the pack keyed (run project, `key`) from the table to the end of the run.
    fn load(&mut self, t: &mut TailsTable, key: &str) -> Result<()> {
        let project = self.project.clone();
        let Some(v) = t.remove((project.as_str(), key))? else {
            return Err(StoreError::Corrupt(format!(
                "tail pack ({project}, {key}) vanished"
            )));
        };
        for (metric, start, bytes) in decode(v.value())? {
            self.members.push(Member {
                metric,
                start,
                bytes: bytes.to_vec(),
            });
        }
        Ok(())
    }

    /// Writes full packs from the front of the run whose members all sort before
    /// `editing` (no later ascending edit reaches them); None writes every member.
    fn write_front(&mut self, t: &mut TailsTable, editing: Option<&str>) -> Result<()> {
        let mut wrote = false;
        loop {
            // Keep the metric being edited in the run: compaction edits one metric a few
            // times in a row (a removal, then puts), and writing its pack now would only
            // load it again. So a pack may take only members before it, and is written
            // once the member after it is known (the cut is final): the pack's length is
            // needed only if it ends by the member at `before`.
            let before = match editing {
                Some(editing) => self
                    .members
                    .partition_point(|m| m.metric.as_str() < editing),
                None => self.members.len(),
            };
            let n = match self.front_pack_len(before + 1) {
                Some(n) if n <= before => n,
                None if editing.is_none() && !self.members.is_empty() => self.members.len(),
                _ => break,
            };
            #[cfg(test)]
            assert_eq!(n, first_pack_len(&self.project, &self.members));
            t.insert(
                (self.project.as_str(), self.members[0].metric.as_str()),
                encode(&self.members[..n]).as_slice(),
            )?;
            self.members.drain(..n);
            // Sizes were measured from the old front.
            self.sizes.clear();
            wrote = true;
        }
        if let Some(first) = self.members.first() {
            if wrote {
                // Packs now cover the metrics before the first member left.
                self.start = first.metric.clone();
            }
        }
        Ok(())
    }

    /// The length of the front pack (see `first_pack_len`) if the member that does not fit
    /// it is among the first `look` members; None if those all fit (or there are none).
    fn front_pack_len(&mut self, look: usize) -> Option<usize> {
        let budget = pack_budget(&self.project, &self.members.first()?.metric);
        let look = look.min(self.members.len());
        loop {
            let i = self.sizes.len();
            // Sizes grow with each member, and none is measured past the first over the
            // budget, so only the newest can be it (a lone first member may exceed it).
            if i >= 2 && self.sizes[i - 1] > budget {
                return Some(i - 1);
            }
            if i >= look {
                return None;
            }
            let prev = i.checked_sub(1).map(|p| &self.members[p]);
            let used = self.sizes.last().copied().unwrap_or(PACK_PREFIX_BYTES)
                + self.members[i].encoded_len(prev);
            self.sizes.push(used);
        }
    }
}

/// The key of the first pack of `project` after `key`.
fn next_key(t: &TailsTable, project: &str, key: &str) -> Result<Option<String>> {
    use std::ops::Bound::{Excluded, Unbounded};
    let next = t
        .range::<(&str, &str)>((Excluded((project, key)), Unbounded))?
        .next();
    Ok(match next {
        Some(row) => {
            let row = row?;
            let (p, m) = row.0.value();
            (p == project).then(|| m.to_owned())
        }
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::TAILS;
    use proptest::prelude::*;
    use redb::{Database, ReadableDatabase};
    use std::collections::BTreeMap;

    fn member(metric: &str, start: i64, len: usize) -> Member {
        Member {
            metric: metric.into(),
            start,
            bytes: (0..len).map(|i| (i * 7 + start as usize) as u8).collect(),
        }
    }

    /// A version 1 pack, as stathook wrote them in store formats 7 and 8.
    fn encode_v1(members: &[Member]) -> Vec<u8> {
        let mut out = vec![PACK_V1];
        put_varint(&mut out, members.len() as u64);
        for m in members {
            put_varint(&mut out, m.metric.len() as u64);
            out.extend_from_slice(m.metric.as_bytes());
            out.extend_from_slice(&m.start.to_le_bytes());
            put_varint(&mut out, m.bytes.len() as u64);
            out.extend_from_slice(&m.bytes);
        }
        out
    }

    #[test]
    fn version_2_front_codes_ids_and_refuses_a_bad_prefix() {
        let members: Vec<Member> = (0..100)
            .map(|i| member(&format!("api.latency.p{i:02}"), 1_795_000_000_000, 20))
            .collect();
        let (v1, v2) = (encode_v1(&members), encode(&members));
        // v1: 1 + 15 + 8 + 1 framing bytes a member; v2: 1 + 1 + 1 + 1 + 1 (all but the first).
        assert!(
            v1.len() - v2.len() > 100 * 18,
            "{} vs {}",
            v1.len(),
            v2.len()
        );
        // A shared prefix longer than the previous metricId is damage, not a panic.
        let mut bad = encode(&members[..2]);
        let second = 2 + 1 + 1 + 15 + varint_len(zigzag(1_795_000_000_000)) + 1 + 20;
        assert_eq!(bad[second], 14, "the second member shares 14 bytes");
        bad[second] = 16;
        assert!(decode(&bad).is_err());
        // So is one that splits a character.
        let split = [member("é1", 0, 20), member("é2", 0, 20)];
        let mut bad = encode(&split);
        let second = 2 + 1 + 1 + 3 + 1 + 1 + 20;
        assert_eq!(bad[second], 2);
        bad[second] = 1;
        assert!(decode(&bad).is_err());
    }

    proptest! {
        #[test]
        fn packs_round_trip_and_refuse_damage(
            // Shared prefixes, multi-byte characters that share a first byte (é, ê), and
            // first timestamps anywhere in i64.
            sizes in proptest::collection::btree_map("(s|sé|sê|a/b)[a-zéê/ 0-9]{0,12}", (any::<i64>(), 0usize..300), 1..20),
            v1 in any::<bool>(),
        ) {
            let members: Vec<Member> = sizes.iter().map(|(m, (s, n))| member(m, *s, *n)).collect();
            let pack = if v1 { encode_v1(&members) } else { encode(&members) };
            if !v1 {
                let body: usize = members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| m.encoded_len(i.checked_sub(1).map(|p| &members[p])))
                    .sum();
                prop_assert_eq!(pack.len(), 1 + varint_len(members.len() as u64) + body);
            }
            let back = decode(&pack).unwrap();
            prop_assert_eq!(back.len(), members.len());
            for ((m, s, b), want) in back.iter().zip(&members) {
                prop_assert_eq!((m.as_str(), *s, *b), (want.metric.as_str(), want.start, want.bytes.as_slice()));
                prop_assert_eq!(find(&pack, m).unwrap(), Some((*s, *b)));
            }
            prop_assert_eq!(find(&pack, "~not there").unwrap(), None);
            for cut in 0..pack.len() {
                prop_assert!(decode(&pack[..cut]).is_err(), "cut at {}", cut);
            }
            let mut longer = pack.clone();
            longer.push(0);
            prop_assert!(decode(&longer).is_err());
        }
    }

    proptest! {
        // Each case builds a redb file and commits up to six rounds: 48 cases keep the
        // debug-build test run (CI's) to seconds.
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Rounds of tail edits through `TailRun` leave the table holding exactly what a
        /// plain map says, with packs that partition the metricIds and fit their budget; when
        /// a round edits in order, packs but the last of a run are nearly full.
        #[test]
        fn edits_through_runs_match_a_map(
            rounds in proptest::collection::vec(
                (proptest::collection::vec((0u16..300, 0i64..5, 0usize..9000, any::<bool>()), 1..120), any::<bool>()),
                1..6,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("t.redb")).unwrap();
            let mut model: BTreeMap<(String, String), Member> = BTreeMap::new();
            for (edits, sorted) in rounds {
                let mut edits: Vec<_> = edits
                    .into_iter()
                    .map(|(id, start, len, keep)| {
                        // Two projects, so runs cross a project boundary.
                        let project = if id % 7 == 0 { "a" } else { "b" };
                        (project.to_string(), format!("m{id:03}"), start, len, keep || len % 5 != 0)
                    })
                    .collect();
                if sorted {
                    edits.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
                }
                let txn = db.begin_write().unwrap();
                {
                    let mut t = txn.open_table(TAILS).unwrap();
                    let mut run = TailRun::default();
                    for (p, m, start, len, keep) in edits {
                        let want = model.get(&(p.clone(), m.clone())).cloned();
                        let got = run.get(&mut t, &p, &m).unwrap().cloned();
                        prop_assert_eq!(got, want);
                        if keep {
                            let mem = member(&m, start, len);
                            run.set(&mut t, &p, &m, Some((start, mem.bytes.clone()))).unwrap();
                            model.insert((p, m), mem);
                        } else {
                            run.set(&mut t, &p, &m, None).unwrap();
                            model.remove(&(p, m));
                        }
                    }
                    run.flush(&mut t).unwrap();
                }
                txn.commit().unwrap();

                let txn = db.begin_read().unwrap();
                let t = txn.open_table(TAILS).unwrap();
                let mut seen = BTreeMap::new();
                let mut packs = Vec::new();
                for row in t.iter().unwrap() {
                    let (k, v) = row.unwrap();
                    let (p, first) = k.value();
                    let members = decode(v.value()).unwrap();
                    prop_assert_eq!(members[0].0.as_str(), first);
                    prop_assert!(members.len() == 1 || v.value().len() <= pack_budget(p, first));
                    for (m, s, b) in &members {
                        let mem = Member { metric: m.to_string(), start: *s, bytes: b.to_vec() };
                        prop_assert!(seen.insert((p.to_string(), m.to_string()), mem).is_none());
                    }
                    packs.push(v.value().len());
                }
                prop_assert_eq!(&seen, &model);
                for id in 0..300u16 {
                    for p in ["a", "b"] {
                        let m = format!("m{id:03}");
                        let got = lookup(&t, p, &m).unwrap();
                        let want = model.get(&(p.to_string(), m)).map(|x| (x.start, x.bytes.clone()));
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }

    #[test]
    fn in_order_edits_fill_packs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        // Three rounds growing 400 tails by ~1 KB each, as a steady load does.
        for round in 1..=3usize {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(TAILS).unwrap();
                let mut run = TailRun::default();
                for i in 0..400 {
                    let m = format!("s{i:04}");
                    let mem = member(&m, 0, round * 1000 + i % 97);
                    run.set(&mut t, "p", &m, Some((0, mem.bytes))).unwrap();
                }
                run.flush(&mut t).unwrap();
            }
            txn.commit().unwrap();
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(TAILS).unwrap();
            let sizes: Vec<usize> = t
                .iter()
                .unwrap()
                .map(|r| r.unwrap().1.value().len())
                .collect();
            let budget = pack_budget("p", "s0000");
            // Every pack but the last is within one tail (≤ ~3.1 KB) of its budget.
            for (i, n) in sizes.iter().enumerate().take(sizes.len() - 1) {
                assert!(
                    *n + 3200 > budget,
                    "round {round}, pack {i}: {n} of {budget}"
                );
            }
            let total: usize = sizes.iter().sum();
            assert!(total > 400 * round * 1000, "{total}");
        }
    }
}
