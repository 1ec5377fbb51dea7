"""Reads hearth-bench result lines (JSON), for the table and the plots."""
import json


def read_results(path):
    """{scenario key: {server label: result}}; the key tells the variants
    of a scenario apart (fanout-paced, idle-active)."""
    rows = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            result = json.loads(line)
            key = result["scenario"] + ("-paced" if result.get("rate") else "")
            key += "-active" if result.get("ping_first") else ""
            rows.setdefault(key, {})[result["label"]] = result
    return rows
