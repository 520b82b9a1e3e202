#!/usr/bin/env bash
# Schemathesis against the generated OpenAPI document of a running `yidi serve` (not run by
# CI: it needs Python and the network for `pip install`, and takes minutes).
#
# Usage (from the repository root, after `cargo build` or `cargo build --release`):
#   tests/schemathesis/run.sh [extra schemathesis options, e.g. --max-examples 50]
#
# Starts the server on a temporary SQLite file with the rate limits lifted and one agent
# token configured (so the agent-only routes are exercised past their login check), runs
# schemathesis on every documented operation with every check except the two that
# schemathesis.toml (beside this script) turns off, saying why, and fails on any failed
# check; `not_a_server_error` (no 5xx) is the one that must never fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/debug/yidi}
PORT=${PORT:-18613}
VENV=${VENV:-/tmp/yidi-schemathesis}
[[ -x $VENV/bin/schemathesis ]] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis; }

DIR=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
# `yidi agent-token` prints "token: T" and "config: agent_token_sha256 = ["D"]"
OUT=$($BIN agent-token)
TOKEN=$(sed -n 's/^token: *//p' <<<"$OUT")
DIGEST=$(sed -n 's/.*\["\([0-9a-f]*\)"\].*/\1/p' <<<"$OUT")
export YIDI_LOG=${YIDI_LOG:-warn}
export YIDI_LIMITS__PER_IP_PER_MINUTE=100000000 YIDI_LIMITS__PER_IP_BURST=100000000
export YIDI_LIMITS__PER_SESSION_PER_MINUTE=100000000 YIDI_LIMITS__PER_SESSION_BURST=100000000
export YIDI_AGENT_TOKEN_SHA256="[\"$DIGEST\"]"
$BIN serve --addr 127.0.0.1:$PORT --database-url "sqlite://$DIR/st.db" 2>"$DIR/serve.log" &
PID=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done

status=0
"$VENV/bin/schemathesis" --config-file tests/schemathesis/schemathesis.toml \
  run "http://127.0.0.1:$PORT/v1/openapi.json" \
  --header "Authorization: Bearer $TOKEN" "$@" || status=$?
if grep -q "internal error response\|panicked" "$DIR/serve.log"; then
  echo "the server logged an internal error:" >&2
  grep "internal error response\|panicked" "$DIR/serve.log" >&2
  status=1
fi
exit $status
