//! Alert records as JSON rows (`tables.rs`): rules and their states, channels, the outbox of
//! notifications not yet delivered and each channel's delivery log. An evaluation's state
//! changes and the notifications they cause commit in one transaction, so a crash leaves
//! both or neither. The store keeps them; it does not judge rules or send anything
//! (`alert`, `service::alerts`).

use super::tables::*;
use super::*;
use redb::TableDefinition;

type ById = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

/// Attempts kept per channel in its delivery log.
pub const DELIVERY_LOG_LEN: usize = 100;

fn rows<T: for<'de> Deserialize<'de>>(
    db: &Database,
    table: ById,
    project: Option<&str>,
    what: &str,
) -> Result<Vec<(String, T)>> {
    let txn = db.begin_read()?;
    let t = txn.open_table(table)?;
    let mut out = Vec::new();
    for row in t.range((project.unwrap_or(""), "")..)? {
        let (k, v) = row?;
        let (p, _) = k.value();
        if project.is_some_and(|want| want != p) {
            break;
        }
        out.push((p.to_owned(), from_json(v.value(), what)?));
    }
    Ok(out)
}

fn row<T: for<'de> Deserialize<'de>>(
    db: &Database,
    table: ById,
    project: &str,
    id: &str,
    what: &str,
) -> Result<Option<T>> {
    let txn = db.begin_read()?;
    let t = txn.open_table(table)?;
    t.get((project, id))?
        .map(|v| from_json(v.value(), what))
        .transpose()
}

/// One outbox change of a delivery round: the item rewritten (a retry later) or removed
/// (delivered or given up), and the attempt appended to its channel's log. No `seq`: an
/// attempt outside the outbox (a channel's Send test), only logged.
pub struct Attempted<'a, T, A> {
    pub seq: Option<u64>,
    pub item: Option<&'a T>,
    pub project: &'a str,
    pub channel: &'a str,
    pub attempt: &'a A,
}

impl Store {
    /// Rules of one project, or of all (`None`), with their project ids.
    pub fn alert_rules<T: for<'de> Deserialize<'de>>(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<(String, T)>> {
        rows(&*self.db()?, ALERT_RULES, project, "alert rule")
    }

    pub fn alert_rule<T: for<'de> Deserialize<'de>>(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<T>> {
        row(&*self.db()?, ALERT_RULES, project, id, "alert rule")
    }

    pub fn alert_states<T: for<'de> Deserialize<'de>>(&self) -> Result<Vec<((String, String), T)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(ALERT_STATES)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (k, v) = r?;
            let (p, id) = k.value();
            out.push((
                (p.to_owned(), id.to_owned()),
                from_json(v.value(), "alert state")?,
            ));
        }
        Ok(out)
    }

    pub fn alert_state<T: for<'de> Deserialize<'de>>(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<T>> {
        row(&*self.db()?, ALERT_STATES, project, id, "alert state")
    }

    /// Stores a rule; with `state`, its state too (a new rule starts with one).
    pub fn put_alert_rule<R: Serialize, S: Serialize>(
        &self,
        project: &str,
        id: &str,
        rule: &R,
        state: Option<&S>,
    ) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(ALERT_RULES)?
            .insert((project, id), to_json(rule).as_slice())?;
        if let Some(s) = state {
            txn.open_table(ALERT_STATES)?
                .insert((project, id), to_json(s).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes a rule and its state; false if there was none.
    pub fn remove_alert_rule(&self, project: &str, id: &str) -> Result<bool> {
        let txn = self.db()?.begin_write()?;
        let existed = txn
            .open_table(ALERT_RULES)?
            .remove((project, id))?
            .is_some();
        txn.open_table(ALERT_STATES)?.remove((project, id))?;
        txn.commit()?;
        Ok(existed)
    }

    /// One evaluation's outcome: the states that changed and the notifications they cause,
    /// queued in the outbox under the next sequence numbers, in one transaction.
    pub fn commit_alert_round<S: Serialize, N: Serialize>(
        &self,
        states: &[((String, String), S)],
        notices: &[N],
    ) -> Result<()> {
        if states.is_empty() && notices.is_empty() {
            return Ok(());
        }
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(ALERT_STATES)?;
            // A rule deleted while it was being evaluated stays deleted.
            let rules = txn.open_table(ALERT_RULES)?;
            for ((p, id), s) in states {
                if rules.get((p.as_str(), id.as_str()))?.is_some() {
                    t.insert((p.as_str(), id.as_str()), to_json(s).as_slice())?;
                }
            }
            let mut out = txn.open_table(OUTBOX)?;
            let first = out.last()?.map_or(0, |(k, _)| k.value() + 1);
            for (seq, n) in (first..).zip(notices) {
                out.insert(seq, to_json(n).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every notification waiting for delivery, oldest first.
    pub fn outbox<T: for<'de> Deserialize<'de>>(&self) -> Result<Vec<(u64, T)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (k, v) = r?;
            out.push((k.value(), from_json(v.value(), "outbox item")?));
        }
        Ok(out)
    }

    /// Records delivery attempts: each item rewritten or removed, its attempt logged.
    pub fn record_attempts<T: Serialize, A: Serialize + for<'de> Deserialize<'de>>(
        &self,
        done: &[Attempted<'_, T, A>],
    ) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let txn = self.db()?.begin_write()?;
        {
            let mut out = txn.open_table(OUTBOX)?;
            let mut log = txn.open_table(DELIVERY_LOG)?;
            for d in done {
                match (d.seq, d.item) {
                    (Some(seq), Some(item)) => {
                        out.insert(seq, to_json(item).as_slice())?;
                    }
                    (Some(seq), None) => {
                        out.remove(seq)?;
                    }
                    (None, _) => {}
                }
                let mut entries: Vec<serde_json::Value> = match log.get((d.project, d.channel))? {
                    Some(v) => from_json(v.value(), "delivery log")?,
                    None => Vec::new(),
                };
                entries.push(serde_json::to_value(d.attempt).expect("BUG: attempts serialize"));
                let excess = entries.len().saturating_sub(DELIVERY_LOG_LEN);
                entries.drain(..excess);
                log.insert((d.project, d.channel), to_json(&entries).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// A channel's delivery log, oldest first.
    pub fn delivery_log<A: for<'de> Deserialize<'de>>(
        &self,
        project: &str,
        channel: &str,
    ) -> Result<Vec<A>> {
        Ok(row(&*self.db()?, DELIVERY_LOG, project, channel, "delivery log")?.unwrap_or_default())
    }

    pub fn channels<T: for<'de> Deserialize<'de>>(&self, project: &str) -> Result<Vec<T>> {
        Ok(rows(&*self.db()?, CHANNELS, Some(project), "channel")?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    pub fn channel<T: for<'de> Deserialize<'de>>(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<T>> {
        row(&*self.db()?, CHANNELS, project, id, "channel")
    }

    pub fn put_channel<T: Serialize>(&self, project: &str, id: &str, c: &T) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(CHANNELS)?
            .insert((project, id), to_json(c).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Removes a channel and its delivery log; false if there was none. The caller checks
    /// that no rule uses it.
    pub fn remove_channel(&self, project: &str, id: &str) -> Result<bool> {
        let txn = self.db()?.begin_write()?;
        let existed = txn.open_table(CHANNELS)?.remove((project, id))?.is_some();
        txn.open_table(DELIVERY_LOG)?.remove((project, id))?;
        txn.commit()?;
        Ok(existed)
    }
}
