#!/usr/bin/env bash
# Streams assistant replies through Hearth (kind "openai") from the fake model
# that hearth-bench serves itself, and measures per-delta and per-token
# latency, Hearth's CPU per 1,000 deltas and its memory per active reply.
# Hearth is pinned to core 0, the load generator (clients and fake model) to
# core 1. Two runs: coalesce_ms 0 (Hearth's own added latency) and 40, the
# default (what a client sees).
#   bench/run-assistant.sh [quick]
# "quick" runs 20 sessions x 60 tokens, to check the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

sessions=200; tokens=300; token_rate=50; timeout=120
if [ "${1:-}" = quick ]; then
  sessions=20; tokens=60; timeout=60
fi
model_port=18089

cargo build --release -q -p hearth -p hearth-bench
out="target/bench/$(date -u +%Y%m%dT%H%M%SZ)-assistant"
mkdir -p "$out"
results="$out/results.jsonl"
secret="bench-secret-$$-0123456789abcdef0123456789"
# /proc/<pid>/stat counts CPU time in these.
clk_tck=$(getconf CLK_TCK)

server_pid=""; server_addr=""
start_hearth() { # coalesce_ms
  local log="$out/hearth-coalesce$1.log"
  # The fake model is up only while hearth-bench runs; Hearth connects to it
  # only when a reply is asked for, so it may start first. In-flight limits
  # at least the session count: the run measures streaming, not queueing.
  HEARTH_BIND=127.0.0.1:0 HEARTH_JWT_SECRET="$secret" \
  HEARTH_ASSISTANT_KIND=openai \
  HEARTH_ASSISTANT_BASE_URL="http://127.0.0.1:$model_port/v1" \
  HEARTH_ASSISTANT_MODEL=bench \
  HEARTH_ASSISTANT_COALESCE_MS="$1" \
  HEARTH_ASSISTANT_MAX_IN_FLIGHT="$sessions" \
  HEARTH_ASSISTANT_MAX_IN_FLIGHT_PER_PLAYER=4 \
  HEARTH_CONVERSATIONS_PATH="$out/conversations-coalesce$1.db" \
    taskset -c 0 target/release/hearth --config bench/hearth-bench.toml 2>"$log" &
  server_pid=$!
  for _ in $(seq 100); do
    server_addr=$(grep -o 'listening addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    [ -n "$server_addr" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "hearth did not start; see $log" >&2
  exit 1
}
stop_hearth() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
# A failed run must not leave Hearth holding core 0.
trap stop_hearth EXIT

for coalesce in 0 40; do
  start_hearth "$coalesce"
  taskset -c 1 target/release/hearth-bench --addr "$server_addr" --secret "$secret" \
    --server-pid "$server_pid" --label "hearth-coalesce$coalesce" \
    assistant --sessions "$sessions" --tokens "$tokens" --token-rate "$token_rate" \
    --model-port "$model_port" --timeout "$timeout" --clk-tck "$clk_tck" \
    --coalesce-ms "$coalesce" | tee -a "$results"
  stop_hearth
done

python3 - "$results" <<'EOF' | tee "$out/table.md"
import json, sys

def num(value, digits):
    return "—" if value is None else f"{value:,.{digits}f}"

print("| coalesce | sessions x tokens | completed / failed | deltas (tokens each) "
      "| per delta p50 / p90 / p99 / max | per token p50 / p99 | CPU / 1000 deltas "
      "| memory / active reply | problems |")
print("|---" * 9 + "|")
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("scenario") != "assistant":
        continue
    problems = sum(r[key] for key in ("index_gaps", "text_mismatches", "token_errors",
                                      "tokens_missing", "foreign_deltas", "fallback"))
    unfinished = r["failed"] + r["cancelled"] + r["timed_out"] + r["errors"]
    print(f"| {num(r['coalesce_ms'], 0)} ms | {r['sessions']} x {r['tokens']} "
          f"| {r['completed']} / {unfinished} | {r['deltas']:,} ({r['tokens_per_delta']:.1f}) "
          f"| {num(r['delta_p50_ms'], 1)} / {num(r['delta_p90_ms'], 1)} / "
          f"{num(r['delta_p99_ms'], 1)} / {num(r['delta_max_ms'], 1)} ms "
          f"| {num(r['token_p50_ms'], 1)} / {num(r['token_p99_ms'], 1)} ms "
          f"| {num(r['cpu_ms_per_1000_deltas'], 1)} ms | {num(r['kib_per_active_reply'], 1)} KiB "
          f"| {problems} |")
EOF
echo "raw results: $results"
