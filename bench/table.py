"""Turns hearth-bench result lines (JSON) into the markdown table of BENCHMARKS.md."""
import json
import sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        result = json.loads(line)
        key = result["scenario"] + ("-paced" if result.get("rate") else "")
        rows.setdefault(key, {})[result["label"]] = result


def fmt(result, fields):
    if result is None:
        return "—"
    return ", ".join(f"{label} {result[field]:,.{digits}f}{unit}" for label, field, digits, unit in fields)


scenarios = [
    ("fanout", "fanout, as fast as possible", [("", "deliveries_per_s", 0, "/s"), ("p99", "p99_ms", 1, " ms"), ("lost", "lost", 0, "")]),
    ("fanout-paced", "fanout, 100 msg/s", [("p50", "p50_ms", 1, " ms"), ("p99", "p99_ms", 1, " ms"), ("lost", "lost", 0, "")]),
    ("idle", "idle connections", [("", "kib_per_connection", 1, " KiB each")]),
    ("rtt", "rtt, user_message -> reply", [("", "messages_per_s", 0, "/s"), ("p50", "rtt_p50_ms", 2, " ms"), ("p99", "rtt_p99_ms", 2, " ms")]),
    ("churn", "churn, connect/chat/close", [("", "cycles_per_s", 0, "/s"), ("back to 0:", "connections_after", 0, "")]),
    ("connect", "connect (upgrade, token, welcome) and close", [("", "cycles_per_s", 0, "/s"), ("welcome p50", "welcome_p50_ms", 2, " ms"), ("p99", "welcome_p99_ms", 2, " ms")]),
    ("hoard", "one player's worst case, peak RSS growth", [("", "peak_growth_mib", 1, " MiB"), ("publications", "accepted", 0, "")]),
]
# Columns: the labels given after the results file, by default Hearth and
# the Node peer.
columns = sys.argv[2:] or ["hearth", "node-ws"]
titles = {"hearth": "Hearth", "node-ws": "Node ws peer"}
print("| scenario | " + " | ".join(titles.get(c, c) for c in columns) + " |")
print("|---" * (len(columns) + 1) + "|")
for key, title, fields in scenarios:
    found = rows.get(key, {})
    if not found:
        continue
    cells = " | ".join(fmt(found.get(c), fields).strip() for c in columns)
    print(f"| {title} | {cells} |")
