#!/usr/bin/env bash
# What forwarding costs (docs/benchmarks.md, "Forwarding"): the same fixed dataset
# (`stathook bench --points`, the spec-shaped `mix` webhook payload) sent to stathook without
# and with `--forward` to a local VictoriaMetrics, interleaved, the order alternating. For
# each run: the server's CPU-s per million samples from its start until every sample is
# forwarded (the forwarding that finishes after the load counts), samples/s and p99 of the
# load, and with forwarding the largest lag seen (polled every 0.5 s) and how long the
# target took to catch up after the load ended. Ratio: with / without, per repeat.
#
#   bash benches/forward_compare.sh [--repeats 3] [--series 1000] [--points 2000] [--batch 100]
#
# Installs VictoriaMetrics from Debian if missing; every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=3 SERIES=1000 POINTS=2000 BATCH=100 CONNECTIONS=4
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
PID="" VM_PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop; [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }
PORT=18492 URL="http://127.0.0.1:18492" VM_PORT=18493
TICKS="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr="127.0.0.1:$VM_PORT" -retentionPeriod=100y \
  -loggerLevel=ERROR >"$WORK/vm.log" 2>&1 &
VM_PID=$!
wait_http "http://127.0.0.1:$VM_PORT/health"

lag() { # prints the forward target's lag in samples
  curl -s -H "Authorization: Bearer $(cat "$WORK/sh/admin-token")" "$URL/api/v1/admin/forward" |
    python3 -c 'import json, sys; t = json.load(sys.stdin)["targets"]; print(t[0]["lagSamples"] if t else 0)'
}

# run MODE: prints "cpu_s_per_M samples_per_s p99 max_lag catch_up_s"
run() {
  local mode="$1" flags=()
  [ "$mode" = forward ] && flags=(--forward "http://127.0.0.1:$VM_PORT/api/v1/write")
  rm -rf "$WORK/sh"
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/sh" "${flags[@]}" >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_http "$URL/healthz"
  "$BIN" project create --name Bench --id "bench$RANDOM" --server "$URL" --data-dir "$WORK/sh" >"$WORK/project"
  local project key
  project="$(sed -n 's/^Project ID: //p' "$WORK/project")"
  key="$("$BIN" webhook create --project "$project" --name Bench --server "$URL" --data-dir "$WORK/sh" 2>/dev/null | sed -n 's/^API Key: //p')"
  local before; before="$(cpu_ticks "$PID")"
  local maxlag=0
  if [ "$mode" = forward ]; then
    ( while :; do lag; sleep 0.5; done ) > "$WORK/lags" 2>/dev/null &
    local poller=$!
  fi
  "$BIN" bench --url "$URL" --key "$key" --project "$project" --dataset mix --series "$SERIES" \
    --points "$POINTS" --batch "$BATCH" --connections "$CONNECTIONS" --json > "$WORK/bench.json"
  local ended; ended="$(date +%s.%N)"
  local catch_up=0
  if [ "$mode" = forward ]; then
    kill "$poller" 2>/dev/null; wait "$poller" 2>/dev/null || true
    for _ in $(seq 1200); do [ "$(lag)" = 0 ] && break; sleep 0.1; done
    [ "$(lag)" = 0 ] || { echo "forwarding did not catch up"; exit 1; }
    catch_up="$(python3 -c "import time, sys; print(round(time.time() - float(sys.argv[1]), 1))" "$ended")"
    maxlag="$(sort -n "$WORK/lags" | tail -1)"
  fi
  local after; after="$(cpu_ticks "$PID")"
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
ticks, hz, samples = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(round(ticks / hz / samples * 1e6, 3), round(r["samplesPerS"]), r["latencyMs"]["p99"], sys.argv[5], sys.argv[6])' \
    "$WORK/bench.json" "$((after - before))" "$TICKS" "$((SERIES * POINTS))" "${maxlag:-0}" "$catch_up"
  stop
}

printf '%-6s %-8s %-5s %12s %12s %8s %10s %11s\n' repeat mode order cpu_s_per_M samples_per_s p99_ms max_lag catch_up_s
for r in $(seq "$REPEATS"); do
  if [ $((r % 2)) = 1 ]; then order="plain forward"; else order="forward plain"; fi
  declare -A cpu=()
  i=0
  for mode in $order; do
    i=$((i + 1))
    out="$(run "$mode")"
    read -r c s p l u <<<"$out"
    cpu[$mode]="$c"
    printf '%-6s %-8s %-5s %12s %12s %8s %10s %11s\n' "$r" "$mode" "$i" "$c" "$s" "$p" "$l" "$u"
  done
  python3 -c "import sys; print(f'{sys.argv[1]:6} ratio forward/plain CPU per sample: {float(sys.argv[2]) / float(sys.argv[3]):.2f}')" \
    "$r" "${cpu[forward]}" "${cpu[plain]}"
  unset cpu
done
