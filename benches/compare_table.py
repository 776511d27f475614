"""Tabulates benches/compare.sh results: per workload and system, the median and (min–max)
of each figure over the repeats, and stathook's ratio to VictoriaMetrics of the medians."""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
FIGURES = [
    ("samples/s", lambda r: r["samplesPerSec"], "{:,.0f}"),
    ("requests/s", lambda r: r["requestsPerSec"], "{:,.0f}"),
    ("CPU-s per M", lambda r: r["cpuSecPerMillion"], "{:.2f}"),
    ("CPU-s per M with background", lambda r: r["cpuSecPerMillionAll"], "{:.2f}"),
    ("p50 ms", lambda r: r["p50Ms"], "{:.2f}"),
    ("p99 ms", lambda r: r["p99Ms"], "{:.2f}"),
    ("peak RSS MiB", lambda r: r["peakRssKiB"] / 1024, "{:.0f}"),
    ("disk B/sample", lambda r: r["bytesPerSample"], "{:.3f}"),
    ("× floor", lambda r: r["bytesPerSample"] / r["floorBytesPerSample"], "{:.2f}"),
    ("B/series over floor",
     lambda r: (r["diskBytes"] - r["floorBytesPerSample"] * r["samples"]) / r["series"], "{:,.0f}"),
    ("query p50 ms", lambda r: r["p50Ms_query"], "{:.2f}"),
    ("listing p50 ms", lambda r: r["p50Ms_listing"], "{:,.0f}"),
]


def figure(f, row):
    """The figure of one row, or None where the row does not have it (older rows, loads
    that do not measure it)."""
    try:
        return f(row)
    except KeyError:
        return None

groups = defaultdict(list)
for r in rows:
    groups[(r["workload"], r["system"])].append(r)

for workload in dict.fromkeys(r["workload"] for r in rows):
    any_row = next(r for r in rows if r["workload"] == workload)
    # Rows written before the payload was recorded sent the compact payload.
    payload = any_row.get("payload", "compact")
    clients = "clients on a new connection per request" if any_row.get("newConnection") \
        else "keep-alive connections"
    print(f"\n### {workload}: {any_row['series']:,} series × "
          f"{any_row['samples'] // any_row['series']:,} points, {payload} payload, "
          f"{any_row.get('connections', 4)} {clients} "
          f"(floor {any_row['floorBytesPerSample']:.3f} B/sample)\n")
    systems = [s for s in ("stathook", "stathook_interval", "vm", "influx")
               if (workload, s) in groups]
    labels = {"stathook_interval": "stathook (fsync=interval)"}
    print("| figure | " + " | ".join(labels.get(s, s) for s in systems) + " | stathook / vm |")
    print("|---" * (len(systems) + 2) + "|")
    for name, f, fmt in FIGURES:
        cells, medians = [], {}
        if all(figure(f, r) is None for s in systems for r in groups[(workload, s)]):
            continue
        for s in systems:
            vals = [v for v in (figure(f, r) for r in groups[(workload, s)]) if v is not None]
            if not vals:
                cells.append("–")
                continue
            m = statistics.median(vals)
            medians[s] = m
            cell = fmt.format(m)
            if len(vals) > 1:
                cell += f" ({fmt.format(min(vals))}–{fmt.format(max(vals))})"
            cells.append(cell)
        ratio = ""
        if "stathook" in medians and "vm" in medians and medians["vm"]:
            ratio = f"{medians['stathook'] / medians['vm']:.2f}×"
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    print(f"\nrepeats: " + ", ".join(f"{s} {len(groups[(workload, s)])}" for s in systems))
