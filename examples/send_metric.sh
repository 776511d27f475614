#!/usr/bin/env bash
# The spec's Step 3 curl example. Set STATHOOK_URL, STATHOOK_API_KEY and STATHOOK_PROJECT_ID
# (from `stathook webhook create`); the request itself is the spec's, unchanged.
set -euo pipefail
URL="${STATHOOK_URL:-http://127.0.0.1:8080}/api/webhooks/custom"
curl -sS -X POST "$URL" \
  -H "Authorization: Bearer ${STATHOOK_API_KEY:-YOUR_API_KEY}" \
  -H "Content-Type: application/json" \
  -d '{
    "projectId": "'"${STATHOOK_PROJECT_ID:-YOUR_PROJECT_ID}"'",
    "metrics": [{
      "metricId": "daily_signups",
      "metricName": "Daily Signups",
      "value": 42,
      "unit": "count",
      "timestamp": 1234567890000
    }]
  }'
echo
