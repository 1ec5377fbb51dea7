#!/usr/bin/env bash
# Fan-out across a two-node cluster: the subscribers on node A, the publisher
# on node B, publications through the local Redis (127.0.0.1:6379), next to
# the same scenarios on node A alone with the embedded broker. Node A on
# core 0, node B and the load generator on core 1 (Redis floats).
#   bench/cluster.sh [quick]
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

quick="${1:-}"
subscribers=1000; messages=2000; paced=1000
if [ "$quick" = quick ]; then
  subscribers=50; messages=100; paced=100
fi

cargo build --release -q -p hearth -p hearth-bench
out="target/bench/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
results="$out/results.jsonl"
secret="bench-secret-$$-0123456789abcdef0123456789"
prefix="hearth-bench-$$"
pids=()

node_addr=""
start_node() { # name core broker; sets node_addr
  local log="$out/$1.log"
  HEARTH_BIND=127.0.0.1:0 HEARTH_JWT_SECRET="$secret" HEARTH_BROKER="$3" \
    HEARTH_BROKER_PREFIX="$prefix" HEARTH_PROGRESS_PATH="$out/$1.db" \
    taskset -c "$2" target/release/hearth --config bench/hearth-bench.toml >/dev/null 2>"$log" &
  pids+=($!)
  for _ in $(seq 100); do
    node_addr=$(grep -o 'listening addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    if [ -n "$node_addr" ] && curl -sf "http://$node_addr/readyz" >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$1 did not start; see $log" >&2
  exit 1
}
stop_nodes() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  redis-cli --scan --pattern "$prefix:*" | xargs -r redis-cli del >/dev/null
}
trap stop_nodes EXIT
bench() { # label addr scenario args...
  local label="$1" addr="$2"; shift 2
  taskset -c 1 target/release/hearth-bench --addr "$addr" --secret "$secret" \
    --label "$label" "$@" | tee -a "$results"
}

for scenario in max paced; do
  rate=0; count="$messages"
  [ "$scenario" = paced ] && { rate=100; count="$paced"; }

  start_node single 0 memory
  bench "one-node" "$node_addr" fanout --subscribers "$subscribers" --messages "$count" --rate "$rate"
  stop_nodes

  start_node node-a 0 redis
  a="$node_addr"
  start_node node-b 1 redis
  bench "cluster" "$a" fanout --subscribers "$subscribers" --messages "$count" --rate "$rate" \
    --publisher-addr "$node_addr"
  stop_nodes
done

python3 bench/table.py "$results" one-node cluster | tee "$out/table.md"
echo "raw results: $results"
