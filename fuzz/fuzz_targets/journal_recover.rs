//! Any journal file bytes: the scan must stop at damage without panicking, and the intact
//! prefix it reports must scan again to the same records with no damage.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::journal::{record, recover};

fuzz_target!(|data: &[u8]| {
    let mut file = record::encode_header(1, 7).to_vec();
    file.extend_from_slice(data);
    if let Ok(scan) = recover::scan(&file, 7, 1) {
        let prefix = &file[..scan.valid_len];
        let again = recover::scan(prefix, 7, 1).unwrap();
        assert!(again.damage.is_none());
        assert_eq!(again.records.len(), scan.records.len());
    }
});
