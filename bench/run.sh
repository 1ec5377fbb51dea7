#!/usr/bin/env bash
# Runs every hearth-bench scenario against Hearth and then the Node `ws` peer,
# in one run on this machine: the server pinned to core 0, the load
# generator to core 1. Prints a markdown table and keeps the raw results.
#   bench/run.sh [quick]
# "quick" runs small counts, to check the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

quick="${1:-}"
subscribers=1000; messages=2000; paced=1000; rtt_clients=100; rtt_s=10; cycles=2000
connects=5000
# Idle connections: up to what the open-file limit allows (the server and
# the generator each hold one descriptor per connection, plus a few of
# their own), measured on the way at the counts in idle_steps.
idle=$(( $(ulimit -n) - 200 )); [ "$idle" -gt 10000 ] || idle=10000
idle_steps=1000,2500,5000,10000,15000
# The same after one ping each, as clients that send heartbeats are.
idle_active=10000
if [ "$quick" = quick ]; then
  subscribers=50; messages=100; paced=100; idle=500; idle_steps=100,250; idle_active=500
  rtt_clients=10; rtt_s=2
  cycles=100; connects=200
fi

cargo build --release -q -p hearth -p hearth-bench
(cd bench/peers/node-ws && npm ci --silent --no-audit --no-fund)
out="target/bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
results="$out/results.jsonl"
secret="bench-secret-$$-0123456789abcdef0123456789"

server_pid=""; server_addr=""
start_server() { # name
  local log="$out/$1.log"
  case "$1" in
    hearth)
      HEARTH_BIND=127.0.0.1:0 HEARTH_JWT_SECRET="$secret" \
        taskset -c 0 target/release/hearth --config bench/hearth-bench.toml 2>"$log" &
      ;;
    node-ws)
      PORT=0 HEARTH_JWT_SECRET="$secret" taskset -c 0 node bench/peers/node-ws/server.js 2>"$log" &
      ;;
  esac
  server_pid=$!
  for _ in $(seq 100); do
    server_addr=$(grep -o 'listening addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    [ -n "$server_addr" ] && return 0
    sleep 0.1
  done
  echo "$1 did not start; see $log" >&2
  exit 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
bench() { # name, scenario args...
  local name="$1"; shift
  taskset -c 1 target/release/hearth-bench --addr "$server_addr" --secret "$secret" \
    --server-pid "$server_pid" --label "$name" --clk-tck "$(getconf CLK_TCK)" "$@" \
    | tee -a "$results"
}

for name in hearth node-ws; do
  for scenario in fanout-max fanout-paced idle idle-active rtt churn connect; do
    start_server "$name"
    case "$scenario" in
      fanout-max)   bench "$name" fanout --subscribers "$subscribers" --messages "$messages" --rate 0 ;;
      fanout-paced) bench "$name" fanout --subscribers "$subscribers" --messages "$paced" --rate 100 ;;
      idle)         bench "$name" idle --connections "$idle" --steps "$idle_steps" --settle 2 ;;
      idle-active)  bench "$name" idle --connections "$idle_active" --ping-first --settle 2 ;;
      rtt)          bench "$name" rtt --clients "$rtt_clients" --seconds "$rtt_s" ;;
      churn)        bench "$name" churn --cycles "$cycles" ;;
      connect)      bench "$name" connect --cycles "$connects" ;;
    esac
    stop_server
  done
done

# One player's worst case is Hearth's own figure: the peer has no budgets
# to hold it to.
start_server hearth
bench hearth hoard
stop_server

python3 bench/table.py "$results" | tee "$out/table.md"
python3 bench/plot.py "$results" "$out/plots"
echo "raw results: $results"
