//! House rules that a reviewer would otherwise check by hand.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! doc saying what it owns",
            f.display()
        );
    }
}

#[test]
fn no_ignored_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let needle = ["#[", "ignore"].concat();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(&needle),
            "{} has an ignored test",
            f.display()
        );
    }
}

/// The code of a source file without its `//` comments, so a doc that names a dependency
/// ("one redb transaction") is not taken for a use of it.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` holds `pattern` as a path of its own (not the tail of a longer name:
/// `JournalFile::create` is not `File::create`).
fn uses(code: &str, pattern: &str) -> bool {
    code.match_indices(pattern).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// ARCHITECTURE.md's invariant 1, checked: each owned dependency is used only by its owner.
/// (owner paths under `src/`, what a use of it looks like in code, what to say)
const OWNED: &[(&[&str], &[&str], &str)] = &[
    (
        &["store/"],
        &["redb::", "use redb"],
        "redb is imported only in src/store/",
    ),
    (
        &["ingest/parse.rs"],
        &["simd_json"],
        "simd-json is used only in src/ingest/parse.rs",
    ),
    (
        &["auth/password.rs"],
        &["argon2::", "use argon2"],
        "argon2 is used only in src/auth/password.rs",
    ),
];

/// Inside `src/journal/`, only `file.rs` touches the file system.
const JOURNAL_FILE_IO: &[&str] = &["std::fs", "fs::", "File::", "OpenOptions"];

#[test]
fn owned_dependencies_are_used_only_by_their_owner() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut misuses = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for (owners, patterns, rule) in OWNED {
            if owners.iter().any(|o| rel.starts_with(o)) {
                continue;
            }
            for p in *patterns {
                if uses(&code, p) {
                    misuses.push(format!("src/{rel} uses {p:?}: {rule}"));
                }
            }
        }
        if rel.starts_with("journal/") && rel != "journal/file.rs" {
            for p in JOURNAL_FILE_IO {
                if uses(&code, p) {
                    misuses.push(format!(
                        "src/{rel} uses {p:?}: journal files are touched only in src/journal/file.rs"
                    ));
                }
            }
        }
    }
    assert!(misuses.is_empty(), "{}", misuses.join("\n"));
}

#[test]
fn the_dependency_check_sees_uses_not_comments_or_longer_names() {
    assert_eq!(
        code_of("let x = 1; // redb::Database\n/// redb"),
        "let x = 1; \n"
    );
    assert!(uses("let f = std::fs::File::open(p);", "File::"));
    assert!(uses("use redb::Database;", "redb::"));
    assert!(!uses("file::JournalFile::create(dir)", "File::"));
    assert!(!uses("let p = \"stathook.redb\";", "redb::"));
}
