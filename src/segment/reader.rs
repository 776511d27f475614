//! Byte cursors over segment bytes: fixed-width fields, varints with a one-byte fast path,
//! and zigzag columns with runs of zeros. Every read is bounds-checked and names the field.

use super::*;

/// Reads a column of zigzagged integers, plain or with runs of zeros collapsed (see
/// `push_varint_column`).
pub(super) struct Zigzags<'a> {
    pub(super) varints: Varints<'a>,
    pub(super) runs: bool,
    pub(super) zeros_left: u64,
}

impl<'a> Zigzags<'a> {
    pub(super) fn new(bytes: &'a [u8], runs: bool, what: &'static str) -> Zigzags<'a> {
        Zigzags {
            varints: Varints::new(bytes, what),
            runs,
            zeros_left: 0,
        }
    }

    #[inline]
    pub(super) fn next(&mut self) -> Result<u64, SegmentError> {
        if self.zeros_left > 0 {
            self.zeros_left -= 1;
            return Ok(0);
        }
        let z = self.varints.next()?;
        if z != 0 || !self.runs {
            return Ok(z);
        }
        match self.varints.next()? {
            0 => Err(SegmentError::Malformed(self.varints.what)),
            n => {
                self.zeros_left = n - 1;
                Ok(0)
            }
        }
    }
}

/// Reads consecutive varints of one column, with a fast path for the one-byte values that
/// regular timestamps and small deltas produce.
pub(super) struct Varints<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
    pub(super) what: &'static str,
}

impl<'a> Varints<'a> {
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Varints<'a> {
        Varints {
            bytes,
            pos: 0,
            what,
        }
    }

    #[inline]
    pub(super) fn next(&mut self) -> Result<u64, SegmentError> {
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => {
                let (v, used) = get_varint(&self.bytes[self.pos.min(self.bytes.len())..])
                    .ok_or(SegmentError::Malformed(self.what))?;
                self.pos += used;
                Ok(v)
            }
        }
    }
}

pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SegmentError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(SegmentError::Malformed(what))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(SegmentError::Malformed(what))?;
        self.pos = end;
        Ok(out)
    }
    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, SegmentError> {
        Ok(self.take(1, what)?[0])
    }
    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, SegmentError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, SegmentError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn u64(&mut self, what: &'static str) -> Result<u64, SegmentError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(super) fn i64(&mut self, what: &'static str) -> Result<i64, SegmentError> {
        Ok(self.u64(what)? as i64)
    }
    pub(super) fn f64(&mut self, what: &'static str) -> Result<f64, SegmentError> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    #[inline]
    pub(super) fn varint(&mut self, what: &'static str) -> Result<u64, SegmentError> {
        if let Some(&b) = self.bytes.get(self.pos).filter(|&&b| b < 0x80) {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let (v, used) = get_varint(&self.bytes[self.pos..]).ok_or(SegmentError::Malformed(what))?;
        self.pos += used;
        Ok(v)
    }
    pub(super) fn column(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), SegmentError> {
        let codec = self.u8(what)?;
        let len = self.u32(what)? as usize;
        Ok((codec, self.take(len, what)?))
    }
}
