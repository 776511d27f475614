#!/usr/bin/env bash
# Starts a real server on a free port with a temp data dir, creates a project and a webhook
# with the CLI, runs the curl, Python and Node examples against it, and checks the metrics
# read back. Used by CI; also a quick end-to-end check by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
# STATHOOK_BIN: use an already built binary (CI passes the one `cargo test` built).
if [ -z "${STATHOOK_BIN:-}" ]; then
  cargo build --release --locked --bin stathook
  STATHOOK_BIN="$PWD/target/release/stathook"
fi
BIN="$STATHOOK_BIN"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" > "$WORK/stdout" 2> "$WORK/stderr" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/stdout" 2>/dev/null && break; sleep 0.1; done
URL="$(sed -n 's/^stathook listening on //p' "$WORK/stdout")"
[ -n "$URL" ] || { cat "$WORK/stderr"; echo "server did not start"; exit 1; }
export STATHOOK_URL="$URL"

"$BIN" project create --name "Examples" --id examples --server "$URL" --data-dir "$WORK/data"
"$BIN" webhook create --project examples --name "Cron Job Metrics" --server "$URL" --data-dir "$WORK/data" > "$WORK/webhook" 2>/dev/null
export STATHOOK_API_KEY="$(sed -n 's/^API Key: //p' "$WORK/webhook")"
export STATHOOK_PROJECT_ID="$(sed -n 's/^Project ID: //p' "$WORK/webhook")"

expect() { # expect NAME OUTPUT PATTERN
  if grep -Eq "$3" <<<"$2"; then echo "ok   $1: $2"; else echo "FAIL $1: $2"; exit 1; fi
}

out="$(bash examples/send_metric.sh)"
expect curl "$out" '^\{"success":true,"metricsStored":1\}$'

if ! python3 -c 'import requests' 2>/dev/null; then pip install --quiet requests; fi
out="$(python3 examples/send_metric.py)"
expect python "$out" "^Metric sent: \{'success': True, 'metricsStored': 1\}$"

if ! (cd "$WORK" && npm install --silent --no-audit --no-fund axios >/dev/null 2>&1); then
  echo "npm install axios failed"; exit 1
fi
out="$(NODE_PATH="$WORK/node_modules" node examples/send_metric.js)"
expect node "$out" "^Metric sent: \{ success: true, metricsStored: 1 \}$"

TOKEN="$(cat "$WORK/data/admin-token")"
cat_json="$(curl -sS -H "Authorization: Bearer $TOKEN" "$URL/api/v1/projects/examples/metrics")"
expect read-back "$cat_json" '"sampleCount":3'
echo "examples: 4 passed, 0 failed"
