#!/usr/bin/env bash
# measure-functions.sh: for each function binary, its size, the time from exec to its
# readiness endpoint answering 200 (median of RUNS starts), and its idle RSS (VmRSS from
# /proc, 1 s after ready). Each function runs against a real redis-server on loopback; the
# compile function gets a kubeconfig for an unreachable cluster (it connects lazily).
#   scripts/measure-functions.sh [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

FUNCTIONS=(submit compile status schedule lineage)
for fn in "${FUNCTIONS[@]}"; do
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$WORK/$fn" "./functions/$fn"
done

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

cat >"$WORK/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
KCFG

printf "%-10s %10s %16s %14s\n" function "size MiB" "exec->ready ms" "idle RSS MiB"
for fn in "${FUNCTIONS[@]}"; do
  times=()
  rss=""
  for i in $(seq 1 "$RUNS"); do
    PORT=$(free_port)
    start=$(now_ns)
    env -i PATH="$PATH" PORT="$PORT" REDIS_URL="redis://127.0.0.1:$RPORT/0" PIPEFN_TEAM=measure \
      K_SINK="http://127.0.0.1:9/" SUBMIT_URL="http://127.0.0.1:9" KUBECONFIG="$WORK/kubeconfig" \
      "$WORK/$fn" >"$WORK/$fn.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    ok=""
    for _ in $(seq 1 2000); do
      if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then ok=1; break; fi
    done
    end=$(now_ns)
    [[ -n "$ok" ]] || { echo "$fn never became ready:"; cat "$WORK/$fn.log"; exit 1; }
    times+=($(( (end - start) / 100000 )))  # tenths of ms
    if [[ $i -eq 1 ]]; then
      sleep 1
      rss=$(awk '$1=="VmRSS:" {printf "%.1f", $2/1024}' "/proc/$pid/status")
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  median=$(printf "%s\n" "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f", m/10}')
  size=$(stat -c %s "$WORK/$fn" | awk '{printf "%.1f", $1/1048576}')
  printf "%-10s %10s %16s %14s\n" "$fn" "$size" "$median" "$rss"
done
