//! The forwarder's durable state (`tables.rs`): one cursor per target, and the dead letters,
//! batches a target refused for good, kept with its answer until `stathook forward replay`
//! resends them. The store keeps them; what they mean is `forward`'s.

use super::tables::*;
use super::*;

/// One refused batch, as listed (the body stays in the store until replayed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub at_ms: i64,
    pub status: u16,
    /// The start of the target's answer.
    pub answer: String,
    pub samples: u64,
}

impl Store {
    /// Every stored cursor, by target id (JSON, `forward::Cursor`).
    pub fn forward_cursors<T: for<'de> Deserialize<'de>>(&self) -> Result<Vec<(String, T)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(FORWARD_CURSORS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((
                k.value().to_owned(),
                from_json(v.value(), "forward cursor")?,
            ));
        }
        Ok(out)
    }

    /// Commits `target`'s cursor (after its 2xx), durably.
    pub fn set_forward_cursor<T: Serialize>(&self, target: &str, cursor: &T) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(FORWARD_CURSORS)?
            .insert(target, to_json(cursor).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Stores a refused batch and moves the cursor past it, in one transaction: a crash
    /// between the two neither loses the batch nor sends it twice.
    pub fn add_dead_letter<T: Serialize>(
        &self,
        target: &str,
        letter: &DeadLetter,
        body: &[u8],
        cursor: &T,
    ) -> Result<u64> {
        let txn = self.db()?.begin_write()?;
        let seq = {
            let mut t = txn.open_table(FORWARD_DEAD)?;
            let last = t
                .range((target, 0)..=(target, u64::MAX))?
                .next_back()
                .transpose()?
                .map(|(k, _)| k.value().1);
            let seq = last.map_or(1, |s| s + 1);
            let meta = to_json(letter);
            let mut value = Vec::with_capacity(4 + meta.len() + body.len());
            value.extend_from_slice(&(meta.len() as u32).to_le_bytes());
            value.extend_from_slice(&meta);
            value.extend_from_slice(body);
            t.insert((target, seq), value.as_slice())?;
            seq
        };
        txn.open_table(FORWARD_CURSORS)?
            .insert(target, to_json(cursor).as_slice())?;
        txn.commit()?;
        Ok(seq)
    }

    /// `target`'s dead letters, oldest first: (sequence, letter, body).
    pub fn dead_letters(&self, target: &str) -> Result<Vec<(u64, DeadLetter, Vec<u8>)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(FORWARD_DEAD)?;
        let mut out = Vec::new();
        for row in t.range((target, 0)..=(target, u64::MAX))? {
            let (k, v) = row?;
            let v = v.value();
            let bad = || StoreError::Corrupt(format!("dead letter {target}/{}", k.value().1));
            let len = v.get(..4).and_then(le_u32).ok_or_else(bad)? as usize;
            let meta = v.get(4..4 + len).ok_or_else(bad)?;
            out.push((
                k.value().1,
                from_json(meta, "dead letter")?,
                v[4 + len..].to_vec(),
            ));
        }
        Ok(out)
    }

    /// Removes a dead letter once its batch was resent and accepted.
    pub fn remove_dead_letter(&self, target: &str, seq: u64) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(FORWARD_DEAD)?.remove((target, seq))?;
        txn.commit()?;
        Ok(())
    }
}
