#!/usr/bin/env bash
# Reproduces docs/benchmarks.md ("stathook vs VictoriaMetrics vs InfluxDB"): runs each system
# on loopback with a fresh temp dir, feeds each the same samples (stathook through its webhook
# JSON, the others through Influx line protocol) with `stathook bench --points`, and reports
# samples/s, server CPU-s per million samples (over the load alone, and with the background
# work it causes: stathook's compaction, VictoriaMetrics' and InfluxDB's flushes and merges,
# counted until the server's CPU settles), p50/p99 latency, peak RSS, data-dir bytes per
# sample after flush, and the latency of a 500-bucket avg query over one series. stathook
# runs twice: with its default `--fsync always` and, labelled apart, `--fsync interval`.
#
#   bash benches/compare.sh [--repeats 3] [--quick] [--payload spec|compact] [--connections 4]
#                           [--only NAME]
#
# --payload spec (the default) sends what users send, the spec's shape: readable metricNames
# ("Series 7"), units on counters and gauges, gauges with two decimals, every series at its
# own millisecond (`stathook bench --dataset spec`); workloads `spec` (1,000 series) and
# `highcard` (50,000 series). --payload compact is the older, kinder payload (metricName =
# the id, no unit, one timestamp per request round; datasets quiet and noisy), workloads
# `quiet`, `noisy`, `highcard`: its figures are labelled so, never reported as the spec's.
# With the spec's payload, three loads look like a fleet: `fleet64` (1,000 series over 64
# keep-alive connections), `cron` (16 clients, each opening a new connection for every
# request of one metric, as a cron job running curl does) and `million` (1,000,000 series,
# 3 points each; its rows also time a listing of every series: stathook's catalog, and
# VictoriaMetrics' /api/v1/series; InfluxDB is left out of it).
# --connections: keep-alive connections of the 4-connection loads (default 4).
#
# Installs VictoriaMetrics and InfluxDB from Debian's packages if missing. Systems are
# interleaved inside each repeat (the order rotates); every process it starts is stopped by
# its PID. Results: one JSON line per run in $OUT (default: a temp file, printed at the end),
# and a table of medians (min–max) from benches/compare_table.py.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=3
QUICK=0
ONLY=""
PAYLOAD=spec
CONNECTIONS=4
usage="usage: $0 [--repeats N] [--quick] [--payload spec|compact] [--connections N] [--only NAME]"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --quick) QUICK=1; REPEATS=1; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    --payload) PAYLOAD="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    *) echo "$usage"; exit 2 ;;
  esac
done
case "$PAYLOAD" in spec|compact) ;; *) echo "--payload is spec or compact, not $PAYLOAD"; exit 2 ;; esac
case "$CONNECTIONS" in ''|*[!0-9]*|0) echo "--connections is a positive number, not $CONNECTIONS"; exit 2 ;; esac

if ! command -v victoria-metrics >/dev/null || ! command -v influxd >/dev/null; then
  echo "== installing victoria-metrics and influxdb (Debian packages)"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y victoria-metrics influxdb >/dev/null
fi

echo "== building stathook (release; its bench command is the load client)"
cargo build --release --locked --bin stathook 2>&1 | tail -1
BIN="$PWD/target/release/stathook"

WORK="$(mktemp -d)"
OUT="${OUT:-$WORK/results.jsonl}"
PID=""
stop() { # stop the server we started, by PID, and wait for it
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi
}
cleanup() { stop; [ "$OUT" = "$WORK/results.jsonl" ] || rm -rf "$WORK"; }
trap cleanup EXIT

wait_http() { # wait_http URL: until it answers (any status)
  for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1"; exit 1
}
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }
# The server's CPU seconds so far (user + system, from /proc: fields 14 and 15 in ticks).
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / hz}' "/proc/$PID/stat"; }
# Waits (≤ 20 s) until the server used under 0.02 CPU-s in a second: its background work
# after a load (merges, compaction) is done. Says so on stderr if it never settles (the
# row then counts 20 s of it), and never fails the run.
settle() {
  local a b
  for _ in $(seq 20); do
    a="$(cpu_s)"; sleep 1; b="$(cpu_s)"
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) - float(sys.argv[1]) < 0.02 else 1)' "$a" "$b"; then
      return 0
    fi
  done
  echo "note: the server's CPU did not settle within 20 s" >&2
}
# all_fields CPU_BEFORE LOAD_JSON: CPU-s per million samples from CPU_BEFORE to now.
all_fields() {
  python3 -c 'import json, sys
load = json.loads(sys.argv[3])
print(json.dumps({"cpuSecPerMillionAll": (float(sys.argv[2]) - float(sys.argv[1])) / load["samples"] * 1e6},
  separators=(",", ":")))' "$1" "$(cpu_s)" "$2"
}
disk_bytes() { du -s --block-size=1 "$1" | cut -f1; }
# The bench reports as the flat fields compare_table.py reads (one JSON object, no spaces).
load_fields() {
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print(json.dumps({"series": r["series"], "samples": r["samples"], "seconds": round(r["durationS"], 3),
  "requestsPerSec": round(r["requestsPerS"], 1),
  "samplesPerSec": round(r["samplesPerS"]), "p50Ms": r["latencyMs"]["p50"],
  "p99Ms": r["latencyMs"]["p99"], "maxMs": r["latencyMs"]["max"], "errors": sum(r["errors"].values()),
  "cpuSecPerMillion": r["cpuSecondsPerMillion"], "floorBytesPerSample": r["floorBytesPerSample"],
  "firstTs": r["firstTs"], "lastTs": r["lastTs"]}, separators=(",", ":")))' "$1"
}
query_fields() {
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print(json.dumps({"p50Ms_query": r["p50Ms"], "p90Ms_query": r["p90Ms"],
  "responseBytes": r["responseBytes"]}, separators=(",", ":")))' "$1"
}
# bench_load URL DATASET SERIES POINTS [more bench flags]: one fixed dataset, sent once
# with the workload's connections and flags ($LOAD_FLAGS).
bench_load() {
  local url="$1" dataset="$2" series="$3" points="$4"; shift 4
  # shellcheck disable=SC2086
  load_fields "$("$BIN" bench --url "$url" --dataset "$dataset" --series "$series" --points "$points" \
    --connections "$LOAD_CONNECTIONS" $LOAD_FLAGS --server-pid "$PID" --json "$@")"
}
# bench_query URL PATH [--key TOKEN]: a warm read, timed 30 times.
bench_query() {
  local url="$1" path="$2"; shift 2
  query_fields "$("$BIN" bench --url "$url" --query "$path" --rounds 30 --json "$@")"
}
# bench_listing URL PATH [--key TOKEN]: a listing of every series (the million load only),
# timed 3 times after 3 untimed ones.
bench_listing() {
  [ "$LISTING" = 1 ] || { echo "{}"; return; }
  local url="$1" path="$2"; shift 2
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print(json.dumps({"p50Ms_listing": r["p50Ms"], "listingBytes": r["responseBytes"]}, separators=(",", ":")))' \
    "$("$BIN" bench --url "$url" --query "$path" --rounds 3 --json "$@")"
}
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

# workload name, dataset, series, points, connections, extra bench flags (commas for
# spaces, - for none), systems (all, or a comma-separated list)
POINTS=4000
MILLION=1000000
if [ "$QUICK" = 1 ]; then POINTS=1000; MILLION=100000; fi
C="$CONNECTIONS"
if [ "$PAYLOAD" = spec ]; then
  WORKLOADS=("spec spec 1000 $POINTS $C - all" "highcard spec 50000 20 $C - all"
    "fleet64 spec 1000 $POINTS 64 - stathook,vm,influx"
    "cron spec 1000 20 16 --new-connection,--batch,1 stathook,vm,influx"
    "million spec $MILLION 3 $C - stathook,vm")
else
  WORKLOADS=("quiet quiet 1000 $POINTS $C - all" "noisy noisy 1000 $POINTS $C - all"
    "highcard quiet 50000 20 $C - all")
fi
echo "== payload $PAYLOAD, $CONNECTIONS connections" >&2
PORT=18480

run_stathook() { # dataset series points -> JSON fields
  local dir="$WORK/stathook" url="http://127.0.0.1:$PORT"
  rm -rf "$dir"
  STATHOOK_FSYNC="${FSYNC:-always}" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$dir" >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_http "$url/healthz"
  "$BIN" project create --name Bench --id bench --server "$url" --data-dir "$dir" >/dev/null
  local key
  key="$("$BIN" webhook create --project bench --name Bench --server "$url" --data-dir "$dir" 2>/dev/null | sed -n 's/^API Key: //p')"
  local load cpu0 all
  cpu0="$(cpu_s)"
  load="$(bench_load "$url" "$1" "$2" "$3" --key "$key" --project bench)"
  # Flush: one compaction round moves everything into segments (the journal empties).
  curl -sf -X POST -H "Authorization: Bearer $(cat "$dir/admin-token")" "$url/api/v1/admin/compact" >/dev/null
  settle
  all="$(all_fields "$cpu0" "$load")"
  local first last step
  first="$(jq_field "$load" firstTs)"; last="$(jq_field "$load" lastTs)"; step="$(step_ms "$first" "$last")"
  local q
  q="$(bench_query "$url" "/api/v1/projects/bench/metrics/s1/points?from=$first&to=$last&step=$step&agg=avg" \
    --key "$(cat "$dir/admin-token")")"
  local listing
  listing="$(bench_listing "$url" "/api/v1/projects/bench/metrics" --key "$(cat "$dir/admin-token")")"
  local rss; rss="$(peak_rss_kib)"
  stop
  echo "$load" "$all" "$q" "$listing" "{\"peakRssKiB\":$rss,\"diskBytes\":$(disk_bytes "$dir")}"
}

# The same with `--fsync interval` (a 200 before the fdatasync; see docs/reliability.md):
# reported as its own column, never as stathook's figure.
run_stathook_interval() { FSYNC=interval run_stathook "$@"; }

run_vm() {
  local dir="$WORK/vm" url="http://127.0.0.1:$PORT"
  rm -rf "$dir"
  # -search.disableCache: every timed query is computed, not served from the rollup cache.
  # -search.maxSeries: the million load's listing returns every series (default cap 30,000).
  victoria-metrics -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$PORT" -retentionPeriod=100y \
    -search.disableCache -search.maxSeries=2000000 -loggerLevel=ERROR >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_http "$url/health"
  local load cpu0 all
  cpu0="$(cpu_s)"
  load="$(bench_load "$url" "$1" "$2" "$3" --format influx)"
  curl -sf "$url/internal/force_flush" >/dev/null
  sleep 2
  settle
  all="$(all_fields "$cpu0" "$load")"
  local first last step
  first="$(jq_field "$load" firstTs)"; last="$(jq_field "$load" lastTs)"; step="$(step_ms "$first" "$last")"
  local query
  query="$(urlenc "avg_over_time(metric_value{id=\"s1\"}[${step}ms])")"
  local q
  q="$(bench_query "$url" "/api/v1/query_range?query=$query&start=$((first / 1000))&end=$((last / 1000))&step=$((step / 1000))")"
  local listing
  listing="$(bench_listing "$url" "/api/v1/series?match%5B%5D=metric_value&start=$((first / 1000 - 60))")"
  local rss; rss="$(peak_rss_kib)"
  stop
  echo "$load" "$all" "$q" "$listing" "{\"peakRssKiB\":$rss,\"diskBytes\":$(disk_bytes "$dir")}"
}

run_influx() {
  local dir="$WORK/influx" url="http://127.0.0.1:$PORT"
  rm -rf "$dir"
  # Snapshot the in-memory cache to TSM files 1 s after writes stop and fully compact 5 s
  # after, so the data dir is measured as stored, not as WAL.
  INFLUXDB_META_DIR="$dir/meta" INFLUXDB_DATA_DIR="$dir/data" INFLUXDB_DATA_WAL_DIR="$dir/wal" \
    INFLUXDB_HTTP_BIND_ADDRESS="127.0.0.1:$PORT" INFLUXDB_BIND_ADDRESS="127.0.0.1:$((PORT + 1))" \
    INFLUXDB_REPORTING_DISABLED=true INFLUXDB_HTTP_LOG_ENABLED=false INFLUXDB_DATA_QUERY_LOG_ENABLED=false \
    INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=1s INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION=5s \
    INFLUXDB_DATA_MAX_VALUES_PER_TAG=0 INFLUXDB_DATA_MAX_SERIES_PER_DATABASE=0 \
    influxd >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_http "$url/ping"
  curl -sf -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE bench" >/dev/null
  local load cpu0 all
  cpu0="$(cpu_s)"
  load="$(bench_load "$url" "$1" "$2" "$3" --format influx --db bench)"
  # Wait until the WAL has been snapshotted and the shard fully compacted (≤ 60 s).
  for _ in $(seq 60); do
    sleep 1
    [ "$(find "$dir/wal" -name '*.wal' -size +0 | wc -l)" = 0 ] && [ "$(find "$dir/data" -name '*.tsm.tmp' | wc -l)" = 0 ] && break
  done
  sleep 6
  settle
  all="$(all_fields "$cpu0" "$load")"
  local first last step
  first="$(jq_field "$load" firstTs)"; last="$(jq_field "$load" lastTs)"; step="$(step_ms "$first" "$last")"
  local query
  query="$(urlenc "SELECT mean(value) FROM metric WHERE id='s1' AND time >= ${first}ms AND time <= ${last}ms GROUP BY time(${step}ms)")"
  local q
  q="$(bench_query "$url" "/query?db=bench&epoch=ms&q=$query")"
  local rss; rss="$(peak_rss_kib)"
  stop
  echo "$load" "$all" "$q" "{\"peakRssKiB\":$rss,\"diskBytes\":$(disk_bytes "$dir")}"
}

jq_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# Bucket width for ≤ 500 buckets over [first, last], in whole seconds (ms).
step_ms() { echo $(( ( ($2 - $1) / 500 / 1000 + 1) * 1000 )); }

for r in $(seq "$REPEATS"); do
  for w in "${WORKLOADS[@]}"; do
    read -r name dataset series points LOAD_CONNECTIONS flags systems <<<"$w"
    [ -z "$ONLY" ] || [ "$ONLY" = "$name" ] || continue
    LOAD_FLAGS=""; [ "$flags" = - ] || LOAD_FLAGS="${flags//,/ }"
    LISTING=0; [ "$name" = million ] && LISTING=1
    [ "$systems" = all ] && systems=stathook,stathook_interval,vm,influx
    IFS=, read -r -a SYSTEMS <<<"$systems"
    # Rotate the order each repeat so no system always runs first on a cold page cache.
    for i in "${!SYSTEMS[@]}"; do
      sys="${SYSTEMS[$(( (i + r) % ${#SYSTEMS[@]} ))]}"
      echo "== repeat $r, $name ($series series x $points points, $LOAD_CONNECTIONS connections $LOAD_FLAGS): $sys" >&2
      fields="$("run_$sys" "$dataset" "$series" "$points")"
      python3 - "$sys" "$name" "$r" "$PAYLOAD" "$LOAD_CONNECTIONS" "$LOAD_FLAGS" $fields >>"$OUT" <<'EOF'
import json, sys
row = {"system": sys.argv[1], "workload": sys.argv[2], "repeat": int(sys.argv[3]),
       "payload": sys.argv[4], "connections": int(sys.argv[5]),
       "newConnection": "--new-connection" in sys.argv[6]}
for part in sys.argv[7:]:
    row.update(json.loads(part))
row["bytesPerSample"] = row["diskBytes"] / row["samples"]
print(json.dumps(row))
EOF
      tail -1 "$OUT" >&2
    done
  done
done

python3 benches/compare_table.py "$OUT"
echo "raw results: $OUT"
