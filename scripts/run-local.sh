#!/usr/bin/env bash
# `make run`: start pipefn up, run an example to completion, show its tasks and outputs,
# and leave the server up for the user (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
ADDR="${PIPEFN_ADDR:-127.0.0.1:8080}"
SERVER="http://$ADDR"
PIPEFN=./bin/pipefn

if curl -fsS "$SERVER/readyz" >/dev/null 2>&1; then
  echo "something already answers at $SERVER: stop it, or set PIPEFN_ADDR=host:port" >&2
  exit 1
fi

"$PIPEFN" up --addr "$ADDR" &
UP=$!
trap 'kill $UP 2>/dev/null; wait $UP 2>/dev/null' INT TERM
for _ in $(seq 1 100); do
  curl -fsS "$SERVER/readyz" >/dev/null 2>&1 && break
  kill -0 $UP 2>/dev/null || { echo "pipefn up exited" >&2; exit 1; }
  sleep 0.1
done

echo
echo "== uploading examples/hello-artifacts.yaml and running it =="
"$PIPEFN" --server "$SERVER" pipeline upload examples/hello-artifacts.yaml --name hello-artifacts
RUN_JSON=$("$PIPEFN" --server "$SERVER" --json run submit --pipeline hello-artifacts --param message="hello from make run" --param count=5)
RUN_ID=$(printf '%s' "$RUN_JSON" | sed -n 's/.*"run_id": *"\([^"]*\)".*/\1/p' | head -n1)
"$PIPEFN" --server "$SERVER" run watch "$RUN_ID"
echo
"$PIPEFN" --server "$SERVER" run get "$RUN_ID"
echo
echo "== the produce task's log =="
"$PIPEFN" --server "$SERVER" run logs "$RUN_ID" produce
echo
echo "pipefn is still up at $SERVER (Ctrl-C to stop). Try:"
echo "  $PIPEFN run submit examples/condition-loop.yaml --param side=tails --wait"
echo "  $PIPEFN run submit examples/failing.yaml --wait"
echo "  $PIPEFN run list"
wait $UP
