//! The offline commands, run with the server stopped: `stathook check` (checksums, and
//! `--sizes`) and `stathook admin-token reset`. They open the store file directly; nothing
//! else in `command` does.

fn offline_config(data_dir: std::path::PathBuf) -> crate::config::Config {
    let listen = crate::cli::DEFAULT_LISTEN
        .parse()
        .expect("BUG: the default listen address parses");
    crate::config::Config::new(data_dir, listen)
}

fn open_offline(config: &crate::config::Config) -> Result<crate::store::Store, String> {
    if !config.store_path().exists() {
        return Err(format!(
            "no store at {}; is --data-dir right?",
            config.store_path().display()
        ));
    }
    crate::store::Store::open(&config.store_path())
        .map_err(|e| format!("{e} (is the server still running? stop it first)"))
}

pub fn reset_admin_token(data_dir: std::path::PathBuf) -> Result<(), String> {
    let config = offline_config(data_dir);
    let store = open_offline(&config)?;
    crate::app::write_new_admin_token(&config, &store).map_err(|e| e.to_string())?;
    println!(
        "New admin token written to {}; the old one no longer works.",
        config.admin_token_path().display()
    );
    Ok(())
}

pub fn check(data_dir: std::path::PathBuf, sizes: bool) -> Result<(), String> {
    let config = offline_config(data_dir);
    let store = open_offline(&config)?;
    if sizes {
        print_sizes(&config, &store)?;
    }
    let (checked, bad) = store.check_segments().map_err(|e| e.to_string())?;
    println!("segments: {checked} checked, {} damaged", bad.len());
    for b in &bad {
        println!("  DAMAGED {b}");
    }
    let memtable = crate::memtable::Memtable::new(crate::journal::SHARDS, 0);
    let report = crate::journal::recover_into(&config.journal_dir(), &store, &memtable, false)
        .map_err(|e| e.to_string())?;
    println!(
        "journal: {} files, {} records, {} samples, {} damaged",
        report.files,
        report.records,
        report.samples,
        report.damaged.len()
    );
    for (path, offset, dropped, why) in &report.damaged {
        println!(
            "  DAMAGED {} at offset {offset}: {why} ({dropped} bytes after it would be dropped)",
            path.display()
        );
    }
    if bad.is_empty() && report.damaged.is_empty() {
        println!("ok");
        Ok(())
    } else {
        Err("damage found".into())
    }
}

/// `check --sizes`: the store file, table by table, then the segments part by part.
fn print_sizes(config: &crate::config::Config, store: &crate::store::Store) -> Result<(), String> {
    let file = config.store_path();
    let file_bytes = std::fs::metadata(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let sizes = store.sizes().map_err(|e| e.to_string())?;
    let l = &sizes.segments;
    let per_sample = |b: u64| b as f64 / l.samples.max(1) as f64;
    println!(
        "store file {}: {file_bytes} bytes, {} samples, {:.3} bytes/sample",
        file.display(),
        l.samples,
        per_sample(file_bytes)
    );
    println!(
        "  {:<10} {:>10} {:>12} {:>12}",
        "table", "rows", "keys+values", "in pages"
    );
    let mut in_pages = 0;
    for t in &sizes.tables {
        println!(
            "  {:<10} {:>10} {:>12} {:>12}",
            t.name, t.rows, t.stored_bytes, t.in_pages
        );
        in_pages += t.in_pages;
    }
    println!(
        "  the rest of the file (redb's header, its own tables, free pages): {} bytes",
        file_bytes.saturating_sub(in_pages)
    );
    let per_block = |b: u64| b as f64 / l.blocks.max(1) as f64;
    println!(
        "segments: {} ({} blocks), {} bytes",
        l.segments,
        l.blocks,
        l.header + l.timestamps + l.values + l.metadata + l.older
    );
    for (part, bytes) in [
        ("header", l.header),
        ("timestamps", l.timestamps),
        ("values", l.values),
        ("metadata", l.metadata),
    ] {
        println!(
            "  {part:<10} {bytes:>12} bytes, {:>8.1} a block, {:.3} bits a sample",
            per_block(bytes),
            per_sample(bytes * 8)
        );
    }
    if l.older > 0 {
        println!("  version 1-2 segments {} bytes", l.older);
    }
    for (name, (blocks, bytes)) in &l.value_encodings {
        println!("    values {name:<22} {blocks:>8} blocks {bytes:>12} bytes");
    }
    println!("tail pack framing: {} bytes", sizes.tail_pack_framing);
    Ok(())
}
