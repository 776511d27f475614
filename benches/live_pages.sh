#!/usr/bin/env bash
# Ingest throughput with live pages listening, against none: one release server, the
# spec-shaped webhook load of `stathook bench` (4 connections, 100 metrics a request),
# alternating runs without listeners and with N event-stream listeners on the same project
# (what N open dashboard or metric pages hold), interleaved so that drift hits both alike.
# Usage: bash benches/live_pages.sh [rounds=3] [listeners=20] [duration=10s]
# LISTEN_TO=other puts the listeners on another project (no notices sent to them): the cost
# of the open connections alone, apart from the notices.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
LISTENERS=${2:-20}
DURATION=${3:-10s}
BIN=${STATHOOK_BIN:-target/release/stathook}
[ -x "$BIN" ] || cargo build --release
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" --log-format json 2>"$WORK/server.log" >/dev/null &
SERVER=$!
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
export STATHOOK_SERVER="$URL" STATHOOK_DATA_DIR="$WORK/data"
"$BIN" project create --name live --id live >/dev/null
"$BIN" project create --name other --id other >/dev/null
LISTEN_TO=${LISTEN_TO:-live}
KEY=$("$BIN" webhook create --project live --name bench 2>/dev/null | sed -n 's/^API Key: //p')
TOKEN=$(cat "$WORK/data/admin-token")
run() {
  "$BIN" bench --url "$URL" --key "$KEY" --project live --duration "$DURATION" --connections 4 \
    --server-pid $SERVER --json | python3 -c "import json,sys; r=json.load(sys.stdin); print('%.0f %.2f %.3f' % (r['samplesPerS'], r['latencyMs']['p99'], r.get('cpuSecondsPerMillion') or 0))"
}
with_listeners() {
  PIDS=()
  for i in $(seq "$LISTENERS"); do
    curl -sN -H "Authorization: Bearer $TOKEN" "$URL/api/v1/projects/$LISTEN_TO/events" >"$WORK/events.$i" 2>/dev/null &
    PIDS+=($!)
  done
  sleep 0.5
  echo "$1 $LISTENERS $(run)"
  EVENTS=$(cat "$WORK"/events.* | grep -c '^event: change' || true)
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -f "$WORK"/events.*
  echo "# round $1: the $LISTENERS listeners received $EVENTS change events in all"
}
echo "round listeners samples_per_s p99_ms cpu_s_per_M"
# ABBA: odd rounds run without listeners first, even rounds with them first, so that a
# drift within a round (the store growing, a compaction) does not favour one side.
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    echo "$r 0 $(run)"
    with_listeners "$r"
  else
    with_listeners "$r"
    echo "$r 0 $(run)"
  fi
done
