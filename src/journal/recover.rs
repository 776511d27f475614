//! Recovery: reads a journal file back, record by record, and stops at the first record
//! that is torn or fails its checksum. It never guesses past damage: everything after the
//! first bad record is dropped and reported (file, offset, bytes dropped).

use super::record::{
    decode_frame, decode_header, FrameError, Record, FRAME_HEADER_LEN, HEADER_LEN,
};

/// What a scan of one file found.
#[derive(Debug)]
pub struct Scan<'a> {
    pub records: Vec<Record<'a>>,
    /// Length of the intact prefix: header plus whole, valid records.
    pub valid_len: usize,
    /// Why the scan stopped early, if it did.
    pub damage: Option<FrameError>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Shorter than a header, or zeros where it goes: a crash during creation, before
    /// anything was acknowledged.
    Missing,
    /// Not a journal file, or one from a newer stathook.
    Unreadable(String),
}

/// Scans `bytes` (a whole journal file); checks the header against the expected
/// generation and format version.
pub fn scan(bytes: &[u8], generation: u64, format_version: u32) -> Result<Scan<'_>, HeaderProblem> {
    // Zeros where the header goes: the file was being created when power failed, and its
    // zero-filled room reached the disk before its header did (nothing in such a file was
    // ever acknowledged: a file is synced, header and all, before its first frame).
    if bytes.len() < HEADER_LEN || bytes[..HEADER_LEN].iter().all(|b| *b == 0) {
        return Err(HeaderProblem::Missing);
    }
    let h = decode_header(bytes).ok_or_else(|| HeaderProblem::Unreadable("bad magic".into()))?;
    if h.format_version > format_version {
        return Err(HeaderProblem::Unreadable(format!(
            "journal format version {} is newer than this stathook's {format_version}; upgrade stathook",
            h.format_version
        )));
    }
    if h.generation != generation {
        return Err(HeaderProblem::Unreadable(format!(
            "header says generation {}, file name says {generation}",
            h.generation
        )));
    }
    let mut pos = HEADER_LEN;
    let mut records = Vec::new();
    let mut damage = None;
    while pos < bytes.len() {
        // Frames are never empty, so a zero length is the zero-filled room after the last
        // frame (see `file::PREALLOC_START_BYTES`): the clean end of the data.
        if bytes[pos..].iter().take(FRAME_HEADER_LEN).all(|b| *b == 0) {
            break;
        }
        match decode_frame(&bytes[pos..]) {
            Ok((recs, used)) => {
                records.extend(recs);
                pos += used;
            }
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
    }
    Ok(Scan {
        records,
        valid_len: pos,
        damage,
    })
}

#[cfg(test)]
mod tests {
    use super::super::record::{encode_header, encode_record, FrameBuilder};
    use super::*;
    use crate::ingest::ValidMetric;

    fn file_with(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut b = encode_header(1, 5).to_vec();
        let mut ends = Vec::new();
        for i in 0..n {
            let id = format!("m{i}");
            let m = ValidMetric {
                metric_id: &id,
                metric_name: "M",
                unit: None,
                timestamp_ms: i as i64,
                value: i as f64,
                metadata: None,
            };
            let mut rec = Vec::new();
            encode_record(&mut rec, "p", std::iter::once(&m), 1);
            let mut f = FrameBuilder::new(0);
            f.push(&rec);
            b.extend_from_slice(f.finish());
            ends.push(b.len());
        }
        (b, ends)
    }

    #[test]
    fn keeps_every_whole_record_before_a_cut() {
        let (b, ends) = file_with(4);
        for cut in HEADER_LEN..=b.len() {
            let s = scan(&b[..cut], 5, 1).unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(s.records.len(), whole, "cut {cut}");
            assert_eq!(
                s.valid_len,
                if whole == 0 {
                    HEADER_LEN
                } else {
                    ends[whole - 1]
                }
            );
            assert_eq!(s.damage.is_some(), s.valid_len != cut);
        }
    }

    #[test]
    fn zero_filled_room_is_a_clean_end_but_a_torn_frame_before_it_is_not() {
        let (mut b, ends) = file_with(2);
        b.resize(b.len() + 4096, 0);
        let s = scan(&b, 5, 1).unwrap();
        assert_eq!((s.records.len(), s.valid_len, s.damage), (2, ends[1], None));
        // A crash mid-write: the last frame's tail never reached the disk (still zeros).
        b[ends[1] - 5..ends[1]].fill(0);
        let s = scan(&b, 5, 1).unwrap();
        assert_eq!((s.records.len(), s.valid_len), (1, ends[0]));
        assert!(s.damage.is_some());
    }

    #[test]
    fn stops_at_a_flipped_byte() {
        let (mut b, ends) = file_with(3);
        b[ends[0] + 10] ^= 0xff;
        let s = scan(&b, 5, 1).unwrap();
        assert_eq!((s.records.len(), s.valid_len), (1, ends[0]));
        assert_eq!(s.damage, Some(FrameError::Checksum));
    }

    #[test]
    fn checks_the_header() {
        let (b, _) = file_with(1);
        assert_eq!(scan(&b[..10], 5, 1).unwrap_err(), HeaderProblem::Missing);
        // Power failed while the file was made: its zero fill is on disk, its header not.
        assert_eq!(
            scan(&[0u8; 4096], 5, 1).unwrap_err(),
            HeaderProblem::Missing
        );
        let mut foreign = vec![0u8; 4096];
        foreign[3] = 1;
        assert!(matches!(
            scan(&foreign, 5, 1),
            Err(HeaderProblem::Unreadable(_))
        ));
        assert!(matches!(scan(&b, 6, 1), Err(HeaderProblem::Unreadable(_))));
        let newer = encode_header(2, 5);
        assert!(
            matches!(scan(&newer, 5, 1), Err(HeaderProblem::Unreadable(m)) if m.contains("upgrade"))
        );
    }
}
