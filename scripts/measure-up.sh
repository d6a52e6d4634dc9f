#!/usr/bin/env bash
# measure-up.sh: peak RSS of `pipefn up` idle and under load (N runs of the artifact
# example submitted by C concurrent clients), with the embedded Redis or a real one
# (REDIS_URL). Prints VmRSS (now) and VmHWM (peak) from /proc in MiB.
#   scripts/measure-up.sh [N=200] [C=16]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"; C="${2:-16}"
ADDR=127.0.0.1:18765
SERVER="http://$ADDR"
make -s build >/dev/null
ARGS=(up --addr "$ADDR" --tick 1s)
[[ -n "${REDIS_URL:-}" ]] && ARGS+=(--redis "$REDIS_URL")
./bin/pipefn "${ARGS[@]}" >/tmp/pipefn-measure-up.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "$SERVER/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
mem() { awk -v k="$1" '$1==k":" {printf "%.1f", $2/1024}' "/proc/$PID/status"; }
sleep 2
echo "idle:        VmRSS $(mem VmRSS) MiB"
./bin/pipefn --server "$SERVER" pipeline upload examples/hello-artifacts.yaml --name load >/dev/null
start=$(date +%s.%N)
seq 1 "$N" | xargs -P "$C" -I{} ./bin/pipefn --server "$SERVER" run submit --pipeline load --param count=3 --wait >/dev/null
end=$(date +%s.%N)
echo "load:        $N runs by $C clients in $(echo "$end - $start" | bc) s"
echo "after load:  VmRSS $(mem VmRSS) MiB, peak VmHWM $(mem VmHWM) MiB"
