#!/usr/bin/env bash
# Soak (not in CI): SOAK_SECONDS (default 600) of steady ingest — 4 connections, 100 metrics
# per request, SOAK_RATE requests/s per connection (default 25: 10,000 samples/s), every
# request with new timestamps — plus a query every 10 s. Every 10 s it prints the server's
# RSS, open file descriptors, data dir size and the query's latency; the load generator
# prints each interval's request p50/p99 (lines starting "t="). At the end it compares the
# last third of the run with the first: RSS, descriptors and p99 must stay flat. The
# server runs with a 32 MiB page cache (SOAK_CACHE_MB) so its memory can plateau.
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL="${SOAK_SECONDS:-600}"
RATE="${SOAK_RATE:-25}"
cargo build --release --locked --bin stathook
BIN="$PWD/target/release/stathook"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# A small page cache, so that a leak would show: with the default 1 GiB, memory rightly
# grows with the data for the whole run (the cache filling), which hides everything else.
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" --cache-mb "${SOAK_CACHE_MB:-32}" \
  > "$WORK/stdout" 2> "$WORK/stderr" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/stdout" 2>/dev/null && break; sleep 0.1; done
URL="$(sed -n 's/^stathook listening on //p' "$WORK/stdout")"
"$BIN" project create --name soak --id soak --server "$URL" --data-dir "$WORK/data" > /dev/null
"$BIN" webhook create --project soak --name soak --server "$URL" --data-dir "$WORK/data" > "$WORK/webhook" 2>/dev/null
KEY="$(sed -n 's/^API Key: //p' "$WORK/webhook")"
TOKEN="$(cat "$WORK/data/admin-token")"

"$BIN" bench --url "$URL" --key "$KEY" --project soak --connections 4 --series 400 \
  --rate "$RATE" --duration "${TOTAL}s" --report-every 10s --server-pid "$SERVER_PID" \
  > "$WORK/bench.out" 2> "$WORK/intervals" &
LOAD_PID=$!

echo "   t_s  rss_mb  fds  data_mb  query_ms"
: > "$WORK/samples"
t=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
  sleep 10
  t=$((t + 10))
  rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status")
  fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
  data=$(du -sm "$WORK/data" | cut -f1)
  q=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
    "$URL/api/v1/projects/soak/metrics/s0/points?agg=avg&maxPoints=500" | awk '{printf "%.1f", $1 * 1000}')
  printf "%6d  %6s  %3s  %7s  %8s\n" "$t" "$rss" "$fds" "$data" "$q" | tee -a "$WORK/samples"
done
wait "$LOAD_PID" || true
echo "--- load generator, per interval"
cat "$WORK/intervals"
echo "--- load generator, whole run"
cat "$WORK/bench.out"

# Flat: the last third's maxima within 1.5× (RSS, p99) or +5 (descriptors) of the first third's.
awk -v n="$(wc -l < "$WORK/samples")" '
  NR <= n / 3 { if ($2 > rss1) rss1 = $2; if ($3 > fd1) fd1 = $3 }
  NR > 2 * n / 3 { if ($2 > rss3) rss3 = $2; if ($3 > fd3) fd3 = $3 }
  END {
    printf "RSS first third max %d MB, last third max %d MB; fds %d -> %d\n", rss1, rss3, fd1, fd3
    if (rss3 > 1.5 * rss1 + 20 || fd3 > fd1 + 5) { print "NOT FLAT"; exit 1 }
    print "flat"
  }' "$WORK/samples"
awk '/^t=/ { n++; p99[n] = $9 } END {
  for (k = 1; k <= n; k++) { v = p99[k]; if (k <= n / 3 && v > a) a = v; if (k > 2 * n / 3 && v > b) b = v }
  printf "request p99: first third max %.2f ms, last third max %.2f ms\n", a, b
  if (b > 1.5 * a + 5) { print "p99 NOT FLAT"; exit 1 }
}' "$WORK/intervals"
