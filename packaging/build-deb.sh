#!/usr/bin/env bash
# Builds the Debian package into target/debian/: the release binary, then the shell
# completions and the man page it generates, then `cargo deb` (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi
cargo build --release --locked --bin stathook
BIN=target/release/stathook
OUT=target/packaging
mkdir -p "$OUT"
"$BIN" completions bash > "$OUT/stathook.bash"
"$BIN" completions zsh > "$OUT/_stathook"
"$BIN" completions fish > "$OUT/stathook.fish"
rm -rf "$OUT/man" && mkdir -p "$OUT/man"
"$BIN" man --dir "$OUT/man"
gzip -9n "$OUT"/man/*.1
cargo deb --no-build --locked --strip --no-separate-debug-symbols
ls target/debian/*.deb
