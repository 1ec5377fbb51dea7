"""Turns hearth-bench result lines (JSON) into the markdown table of BENCHMARKS.md."""
import sys

from results import read_results

rows = read_results(sys.argv[1])


def idle_at(result, count):
    """KiB per connection at `count` open connections, from the idle curve."""
    for at, kib, _ in result.get("curve", []):
        if at == count:
            return kib
    return None


def fmt(result, fields):
    if result is None:
        return "—"
    if result["scenario"] == "idle":
        at_10000 = idle_at(result, 10000)
        most = f"{result['kib_per_connection']:,.1f} KiB each at {result['connections']:,}"
        if at_10000 is None or result["connections"] == 10000:
            return most
        return f"{at_10000:,.1f} KiB each at 10,000; {most}"
    parts = []
    for label, field, digits, unit in fields:
        if result.get(field) is None:
            continue
        parts.append(f"{label} {result[field]:,.{digits}f}{unit}")
    return ", ".join(parts)


# The share of a core the server and the generator used while it ran: a
# generator near 1.0 was the bottleneck.
CPU = [("CPU: server", "server_cpu", 2, ""), ("generator", "generator_cpu", 2, "")]
scenarios = [
    ("fanout", "fanout, as fast as possible", [("", "deliveries_per_s", 0, "/s"), ("p99", "p99_ms", 1, " ms"), ("lost", "lost", 0, "")] + CPU),
    ("fanout-paced", "fanout, 100 msg/s", [("p50", "p50_ms", 1, " ms"), ("p99", "p99_ms", 1, " ms"), ("lost", "lost", 0, "")] + CPU),
    ("idle", "idle connections: at 10,000, and at the most the file limit allows", []),
    ("idle-active", "idle connections after one ping each", []),
    ("rtt", "rtt, user_message -> reply", [("", "messages_per_s", 0, "/s"), ("p50", "rtt_p50_ms", 2, " ms"), ("p99", "rtt_p99_ms", 2, " ms")] + CPU),
    ("churn", "churn, connect/chat/close", [("", "cycles_per_s", 0, "/s"), ("back to 0:", "connections_after", 0, "")] + CPU),
    ("connect", "connect (upgrade, token, welcome) and close", [("", "cycles_per_s", 0, "/s"), ("welcome p50", "welcome_p50_ms", 2, " ms"), ("p99", "welcome_p99_ms", 2, " ms")] + CPU),
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
