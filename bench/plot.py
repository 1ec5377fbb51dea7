"""Draws the plots of BENCHMARKS.md from hearth-bench result lines (JSON).

    python3 bench/plot.py RESULTS.jsonl OUT_DIR [LABEL ...]

Writes SVG files into OUT_DIR: latency by percentile for the request/reply,
paced fan-out and connect scenarios, deliveries over time in the fan-out as
fast as possible, and memory per idle connection against the connection
count. Each plot has one line per server label (by default Hearth and the
Node.js peer). Only the standard library: the bench runs on a fresh machine.
"""
import math
import os
import sys
from html import escape

from results import read_results

# Each server keeps its colour in every plot, whichever lines a plot has.
COLOURS = {"hearth": "#c2410c", "node-ws": "#1d4ed8"}
SPARE_COLOURS = ["#15803d", "#7e22ce", "#a16207"]
TITLES = {"hearth": "Hearth", "node-ws": "Node.js ws peer"}
WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 40, 60, 56


def nice_ticks(low, high, count=6):
    """Round tick values covering low..high."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 10)]
    # The last tick is at or past `high`, so no point falls off the plot.
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def label_of(value):
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:g}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"


class Chart:
    """One line chart: x linear or on a 'nines' scale (percentiles), y linear."""

    def __init__(self, title, x_title, y_title, x_scale="linear"):
        self.title, self.x_title, self.y_title = title, x_title, y_title
        self.x_scale = x_scale
        self.series = []

    def add(self, label, points):
        points = [(x, y) for x, y in points if y is not None]
        if points:
            spare = SPARE_COLOURS[len(self.series) % len(SPARE_COLOURS)]
            self.series.append((TITLES.get(label, label), COLOURS.get(label, spare), points))

    def x_of(self, value):
        if self.x_scale == "nines":
            # 0.9 -> 1, 0.99 -> 2, 0.999 -> 3: the tail gets the room.
            return -math.log10(max(1.0 - value, 1e-5))
        return value

    def svg(self):
        xs = [self.x_of(x) for _, _, points in self.series for x, _ in points]
        ys = [y for _, _, points in self.series for _, y in points]
        if not xs:
            return None
        x_low, x_high = min(xs), max(xs)
        if self.x_scale == "nines":
            x_low, x_high = 0.0, max(x_high, 3.0)
            x_ticks = [(n, f"{100 - 100 / 10 ** n:g}%") for n in range(0, int(math.ceil(x_high)) + 1)]
        else:
            x_ticks = [(t, label_of(t)) for t in nice_ticks(0 if x_low >= 0 else x_low, x_high)]
            x_low, x_high = x_ticks[0][0], x_ticks[-1][0]
        y_ticks = nice_ticks(0, max(ys) * 1.05)
        y_high = y_ticks[-1]
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

        def px(x):
            return LEFT + (x - x_low) / ((x_high - x_low) or 1) * plot_w

        def py(y):
            return TOP + plot_h - y / (y_high or 1) * plot_h

        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
            f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15" '
            f'font-weight="bold">{escape(self.title)}</text>',
        ]
        for value in y_ticks:
            y = py(value)
            out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label_of(value)}</text>')
        for value, text in x_ticks:
            x = px(value)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#f3f4f6"/>')
            out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{escape(text)}</text>')
        out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#9ca3af"/>')
        out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 14}" text-anchor="middle">{escape(self.x_title)}</text>')
        out.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" '
                   f'text-anchor="middle">{escape(self.y_title)}</text>')
        for index, (name, colour, points) in enumerate(self.series):
            path = " ".join(f"{px(self.x_of(x)):.1f},{py(y):.1f}" for x, y in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            if len(points) <= 24:
                for x, y in points:
                    out.append(f'<circle cx="{px(self.x_of(x)):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
            # The legend sits in a row above the plot, clear of the lines.
            legend_x = LEFT + 200 * index
            out.append(f'<line x1="{legend_x}" x2="{legend_x + 24}" y1="{TOP - 14}" y2="{TOP - 14}" '
                       f'stroke="{colour}" stroke-width="3"/>')
            out.append(f'<text x="{legend_x + 30}" y="{TOP - 10}">{escape(name)}</text>')
        out.append("</svg>")
        return "\n".join(out)


def percentile_chart(rows, key, title, labels):
    chart = Chart(title, "percentile", "latency (ms)", x_scale="nines")
    for label in labels:
        result = rows.get(key, {}).get(label)
        if result and result.get("percentiles_ms"):
            # The maximum is in the table; the plot ends at 99.999 %.
            chart.add(label, [(q, ms) for q, ms in result["percentiles_ms"] if q < 1.0])
    return chart


def timeline_chart(rows, key, title, unit, labels):
    chart = Chart(title, "seconds, from the first one done", f"{unit} per second")
    for label in labels:
        result = rows.get(key, {}).get(label)
        if result and result.get("timeline"):
            step = result.get("timeline_ms", 100) / 1000
            chart.add(label, [(i * step, n / step) for i, n in enumerate(result["timeline"])])
    return chart


def rss_chart(rows, labels):
    chart = Chart("Server memory with idle connections", "open connections",
                  "RSS growth over the empty server (MiB)")
    for label in labels:
        result = rows.get("idle", {}).get(label)
        if result and result.get("curve"):
            before = result["rss_before_kib"]
            chart.add(label, [(0, 0)] + [(count, (rss - before) / 1024) for count, _, rss in result["curve"]])
    return chart


def memory_chart(rows, labels):
    chart = Chart("Memory per idle connection", "open connections", "KiB per connection")
    for label in labels:
        result = rows.get("idle", {}).get(label)
        if result and result.get("curve"):
            chart.add(label, [(count, kib) for count, kib, _ in result["curve"]])
    return chart


def main():
    rows = read_results(sys.argv[1])
    out_dir = sys.argv[2]
    labels = sys.argv[3:] or ["hearth", "node-ws"]
    os.makedirs(out_dir, exist_ok=True)
    charts = {
        "rtt-latency.svg": percentile_chart(rows, "rtt", "Request/reply: time to the reply, by percentile", labels),
        "fanout-paced-latency.svg": percentile_chart(
            rows, "fanout-paced", "Paced fan-out (100 publications/s to 1,000): delivery latency", labels),
        "fanout-latency.svg": percentile_chart(
            rows, "fanout", "Fan-out as fast as possible: delivery latency", labels),
        "connect-latency.svg": percentile_chart(rows, "connect", "Connect: time to the welcome", labels),
        "fanout-over-time.svg": timeline_chart(
            rows, "fanout", "Fan-out as fast as possible: deliveries over time", "deliveries", labels),
        "rtt-over-time.svg": timeline_chart(rows, "rtt", "Request/reply: replies over time", "replies", labels),
        "idle-memory.svg": memory_chart(rows, labels),
        "idle-rss.svg": rss_chart(rows, labels),
    }
    for name, chart in charts.items():
        svg = chart.svg()
        if svg:
            with open(os.path.join(out_dir, name), "w") as file:
                file.write(svg + "\n")
            print(os.path.join(out_dir, name))


if __name__ == "__main__":
    main()
