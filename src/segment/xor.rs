//! Gorilla-style XOR coding of a block's float values (Pelkonen et al., "Gorilla", VLDB
//! 2015, section 4.1.2), for values that are neither integers nor short decimals. Pure.
//!
//! Bits are written most significant first. The first value is 64 raw bits; each next one
//! is XORed with its predecessor and written as:
//! - `0`: the same value;
//! - `10` + the XOR's meaningful bits, when they fit the previous window (as many leading
//!   and trailing zeros as the window has, or more);
//! - `11` + 5 bits of leading zeros (capped at 31) + 6 bits of meaningful length (0 = 64) +
//!   the meaningful bits; this becomes the window.
//!
//! The last byte is padded with zero bits. The decoder is bounded by the sample count.

use super::SegmentError;

/// The XOR coding of `values` (bit-exact: `decode` gives back the same bits).
pub fn encode(values: &[f64]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(values.len() * 4 + 8);
    let Some(first) = values.first() else {
        return w.finish();
    };
    let mut prev = first.to_bits();
    w.put(prev, 64);
    // The window: leading zeros and meaningful length of the last `11` entry (none yet).
    let (mut lead, mut len) = (u32::MAX, 0u32);
    for v in &values[1..] {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.put(0, 1);
            continue;
        }
        let (lz, tz) = (x.leading_zeros().min(31), x.trailing_zeros());
        if lead != u32::MAX && lz >= lead && tz >= 64 - lead - len {
            w.put(0b10, 2);
            w.put(x >> (64 - lead - len), len);
        } else {
            lead = lz;
            len = 64 - lz - tz;
            w.put(0b11, 2);
            w.put(u64::from(lead), 5);
            w.put(u64::from(len % 64), 6);
            w.put(x >> tz, len);
        }
    }
    w.finish()
}

/// Appends `count` values decoded from `bytes` to `out`; malformed if the bits run out, a
/// window does not fit in 64 bits, or more than the padding is left over.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), SegmentError> {
    let bad = SegmentError::Malformed("xor values");
    let mut r = BitReader { bytes, pos: 0 };
    if count == 0 {
        return if bytes.is_empty() { Ok(()) } else { Err(bad) };
    }
    let mut prev = r.get(64).ok_or(bad)?;
    out.push(f64::from_bits(prev));
    let (mut lead, mut len) = (u32::MAX, 0u32);
    for _ in 1..count {
        if r.get(1).ok_or(bad)? == 1 {
            if r.get(1).ok_or(bad)? == 1 {
                lead = r.get(5).ok_or(bad)? as u32;
                len = match r.get(6).ok_or(bad)? as u32 {
                    0 => 64,
                    n => n,
                };
                if lead + len > 64 {
                    return Err(bad);
                }
            } else if lead == u32::MAX {
                return Err(bad);
            }
            prev ^= r.get(len).ok_or(bad)? << (64 - lead - len);
        }
        out.push(f64::from_bits(prev));
    }
    if bytes.len() != r.pos.div_ceil(8) {
        return Err(bad);
    }
    Ok(())
}

struct BitWriter {
    out: Vec<u8>,
    /// Bits pending in `acc`, most significant first, fewer than 8 after each `put`.
    acc: u128,
    bits: u32,
}

impl BitWriter {
    fn with_capacity(bytes: usize) -> BitWriter {
        BitWriter {
            out: Vec::with_capacity(bytes),
            acc: 0,
            bits: 0,
        }
    }

    /// Writes the low `n` (≤ 64) bits of `v`.
    fn put(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        self.acc = (self.acc << n) | u128::from(v);
        self.bits += n;
        while self.bits >= 8 {
            self.bits -= 8;
            self.out.push((self.acc >> self.bits) as u8);
        }
        self.acc &= (1u128 << self.bits) - 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push((self.acc << (8 - self.bits)) as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits consumed.
    pos: usize,
}

impl BitReader<'_> {
    /// The next `n` (≤ 64) bits, or None past the end.
    fn get(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let used = (self.pos % 8) as u32;
            let take = left.min(8 - used);
            let chunk = (byte >> (8 - used - take)) & ((1u16 << take) - 1) as u8;
            v = (v << take) | u64::from(chunk);
            self.pos += take as usize;
            left -= take;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Vec<u8> {
        let bytes = encode(values);
        let mut out = Vec::new();
        decode(&bytes, values.len(), &mut out).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(values));
        bytes
    }

    proptest! {
        #[test]
        fn any_floats_round_trip(values in proptest::collection::vec(any::<f64>(), 0..300)) {
            round_trip(&values);
        }

        /// Slowly moving measurements, the case the coding is for.
        #[test]
        fn random_walks_round_trip(start in -1e6f64..1e6, steps in proptest::collection::vec(-1.0f64..1.0, 1..500)) {
            let mut v = start;
            let values: Vec<f64> = steps.iter().map(|s| { v += s; v }).collect();
            round_trip(&values);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..40) {
            let mut out = Vec::new();
            let _ = decode(&bytes, count, &mut out);
            prop_assert!(out.len() <= count);
        }
    }

    #[test]
    fn repeats_cost_one_bit_and_nearby_floats_fewer_than_64() {
        let same = round_trip(&[std::f64::consts::PI; 1000]);
        assert_eq!(same.len(), 8 + 999usize.div_ceil(8));
        let mut v = 20.0f64;
        let temps: Vec<f64> = (0..1000)
            .map(|i| {
                v += ((i * 7919) % 13) as f64 / 97.0 - 0.06;
                v
            })
            .collect();
        let walk = round_trip(&temps);
        assert!(walk.len() < 1000 * 7, "{} bytes", walk.len());
    }

    #[test]
    fn truncated_or_padded_input_is_malformed() {
        let bytes = encode(&[1.5, 2.25, -3.0, 1e300]);
        let mut out = Vec::new();
        assert!(decode(&bytes[..bytes.len() - 1], 4, &mut out).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, 4, &mut Vec::new()).is_err());
        assert!(decode(&[], 1, &mut Vec::new()).is_err());
        assert!(decode(&[], 0, &mut Vec::new()).is_ok());
    }
}
