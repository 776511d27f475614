#!/usr/bin/env bash
# The push formats against VictoriaMetrics on its own endpoints (docs/benchmarks.md, "Push
# formats"): the same fixed dataset (`stathook bench --points`, the spec-shaped `mix`
# payload: decimals, counters, constants) sent once as Prometheus remote write to each
# system's /api/v1/write and as Influx line protocol to each one's /write, stathook with its
# default `--fsync always` (a 2xx only after the fdatasync). Reports the server's CPU-s per
# million samples, samples/s and p99 per run, and the stathook/VictoriaMetrics ratio of each
# repeat; systems alternate inside each repeat, the order rotating.
#
#   bash benches/push_compare.sh [--repeats 3] [--series 1000] [--points 2000] [--batch 500]
#
# --batch 500 is Prometheus 2.42's max_samples_per_send. Installs VictoriaMetrics from
# Debian if missing; every process it starts is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=3 SERIES=1000 POINTS=2000 BATCH=500 CONNECTIONS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --series) SERIES="$2"; shift 2 ;;
    --points) POINTS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    *) echo "usage: $0 [--repeats N] [--series N] [--points N] [--batch N] [--connections N]"; exit 2 ;;
  esac
done

if ! command -v victoria-metrics >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y victoria-metrics >/dev/null
fi
cargo build --release --locked --bin stathook 2>&1 | tail -1
BIN="$PWD/target/release/stathook"
WORK="$(mktemp -d)"
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop; rm -rf "$WORK"' EXIT
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }
PORT=18490 URL="http://127.0.0.1:18490"

# load FORMAT [flags]: one run of the fixed dataset; prints "cpu samples_per_s p99 errors".
load() {
  local format="$1"; shift
  "$BIN" bench --url "$URL" --dataset mix --series "$SERIES" --points "$POINTS" --batch "$BATCH" \
    --connections "$CONNECTIONS" --format "$format" --server-pid "$PID" --json "$@" |
    python3 -c 'import json, sys
r = json.load(sys.stdin)
print(r["cpuSecondsPerMillion"], round(r["samplesPerS"]), r["latencyMs"]["p99"], sum(r["errors"].values()))'
}

run_stathook() { # FORMAT
  rm -rf "$WORK/sh"
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/sh" >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_http "$URL/healthz"
  "$BIN" project create --name Bench --id bench --server "$URL" --data-dir "$WORK/sh" >/dev/null
  local key
  key="$("$BIN" webhook create --project bench --name Bench --server "$URL" --data-dir "$WORK/sh" 2>/dev/null | sed -n 's/^API Key: //p')"
  load "$1" --key "$key" --db bench
  stop
}

run_vm() { # FORMAT
  rm -rf "$WORK/vm"
  victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr="127.0.0.1:$PORT" -retentionPeriod=100y \
    -loggerLevel=ERROR >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_http "$URL/health"
  load "$1"
  stop
}

printf '%-13s %-6s %-9s %-7s %12s %12s %8s %6s\n' format repeat system order cpu_s_per_M samples_per_s p99_ms errors
for format in remote-write influx; do
  for r in $(seq "$REPEATS"); do
    if [ $((r % 2)) = 1 ]; then order="stathook vm"; else order="vm stathook"; fi
    declare -A cpu=()
    i=0
    for system in $order; do
      i=$((i + 1))
      # A command substitution, not `< <(…)`: it waits until the server has stopped.
      out="$("run_$system" "$format")"
      read -r c s p e <<<"$out"
      cpu[$system]="$c"
      printf '%-13s %-6s %-9s %-7s %12s %12s %8s %6s\n' "$format" "$r" "$system" "$i" "$c" "$s" "$p" "$e"
    done
    python3 -c "import sys; print(f'{sys.argv[1]:13} {sys.argv[2]:6} ratio stathook/vm CPU per sample: {float(sys.argv[3]) / float(sys.argv[4]):.2f}')" \
      "$format" "$r" "${cpu[stathook]}" "${cpu[vm]}"
    unset cpu
  done
done
