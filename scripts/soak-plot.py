"""The figures of scripts/soak.sh: reads its CSV (one row per sample: t_s,
rss_kib, fds, p99_ms, req_s, requests, non2xx, delay_ms; the first row, at
t = 0, has no window), writes an SVG of three stacked charts (RSS, open fds,
p99 over time) and prints the summary table in Markdown, with PASS or FAIL.

  soak-plot.py CSV SVG MACHINE MAX_RPS TARGET_RPS

Flat is the pass: the end RSS within 10 % (+8 MiB) of the RSS after the
first minute (after the first half of a run shorter than two minutes), and
the end fd count at most the start one + 8. Standard library only.
"""
import csv
import math
import statistics
import sys
from xml.sax.saxutils import escape

csv_path, svg_path, machine, max_rps, target = sys.argv[1:6]
max_rps, target = float(max_rps), float(target)
rows = list(csv.DictReader(open(csv_path)))
t = [float(r["t_s"]) for r in rows]
rss = [int(r["rss_kib"]) / 1024 for r in rows]
fds = [int(r["fds"]) for r in rows]
windows = [r for r in rows if r["p99_ms"]]
p99 = [(float(r["t_s"]), float(r["p99_ms"])) for r in windows]
if not windows:
    sys.exit("soak-plot: no window in the CSV")


# The summary.
ref_t = min(60.0, t[-1] / 2)
ref = next(i for i, x in enumerate(t) if x >= ref_t)
rss_limit = rss[ref] * 1.10 + 8
fd_limit = fds[0] + 8
passed = rss[-1] <= rss_limit and fds[-1] <= fd_limit
requests = sum(int(r["requests"]) for r in windows)
bad = sum(int(r["non2xx"]) for r in windows)
rate = statistics.mean(float(r["req_s"]) for r in windows)
lat = [v for _, v in p99]
print("| measure | value |")
print("|---|---|")
print(f"| RSS start / end / max | {rss[0]:.1f} / {rss[-1]:.1f} / {max(rss):.1f} MiB |")
print(f"| RSS at {t[ref]:.0f} s (the reference) | {rss[ref]:.1f} MiB |")
print(f"| open fds start / end / max | {fds[0]} / {fds[-1]} / {max(fds)} |")
print(f"| p99 of the 10 s windows, median / max | {statistics.median(lat):.2f} / {max(lat):.2f} ms |")
print(f"| requests | {requests:,} in {len(windows)} windows, mean {rate:,.0f} req/s "
      f"(target {target:,.0f}: 70 % of {max_rps:,.0f}) |")
print(f"| non-2xx | {bad:,} |")
print(f"| result | **{'PASS' if passed else 'FAIL'}**: end RSS {rss[-1]:.1f} MiB "
      f"{'≤' if rss[-1] <= rss_limit else '>'} 1.10 × {rss[ref]:.1f} + 8 = {rss_limit:.1f} MiB; "
      f"end fds {fds[-1]} {'≤' if fds[-1] <= fd_limit else '>'} {fds[0]} + 8 |")


# The SVG.
def nice_step(top, ticks=4):
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def label(v):
    return f"{v:g}" if abs(v) < 10000 else f"{v:,.0f}"


W, LEFT, RIGHT, TOP, PANEL, GAP = 760, 78, 24, 62, 150, 46
H = TOP + 3 * PANEL + 2 * GAP + 52
t_end = max(t[-1], 1.0)
x_step = nice_step(t_end, 6)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
       f'tessera soak: {t[-1]:.0f} s at {target:,.0f} req/s (70 % of {max_rps:,.0f}), '
       f'{"PASS" if passed else "FAIL"}</text>',
       f'<text x="{W / 2}" y="40" text-anchor="middle" fill="#444">{escape(machine)}</text>']


def x_of(v):
    return LEFT + (W - LEFT - RIGHT) * v / t_end


def panel(n, title, unit, points, colour):
    y0 = TOP + n * (PANEL + GAP)
    top = max(v for _, v in points) * 1.15 or 1
    step = nice_step(top)
    top = step * math.ceil(top / step)

    def y_of(v):
        return y0 + PANEL - PANEL * v / top

    out.append(f'<text x="{LEFT}" y="{y0 - 8}" font-weight="bold">{escape(title)}</text>')
    for i in range(round(top / step) + 1):
        y = y_of(i * step)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label(i * step)}</text>')
    for i in range(math.floor(t_end / x_step) + 1):
        x = x_of(i * x_step)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + PANEL}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + PANEL + 15}" text-anchor="middle">{label(i * x_step)}</text>')
    out.append(f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{PANEL}" '
               f'fill="none" stroke="#888"/>')
    yc = y0 + PANEL / 2
    out.append(f'<text x="18" y="{yc}" text-anchor="middle" transform="rotate(-90 18 {yc})">'
               f'{escape(unit)}</text>')
    xy = " ".join(f"{x_of(a):.1f},{y_of(b):.1f}" for a, b in points)
    out.append(f'<polyline points="{xy}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    for a, b in points:
        out.append(f'<circle cx="{x_of(a):.1f}" cy="{y_of(b):.1f}" r="2" fill="{colour}"/>')


panel(0, "Resident memory (VmRSS)", "RSS (MiB)", list(zip(t, rss)), "#1f77b4")
panel(1, "Open file descriptors", "open fds", list(zip(t, fds)), "#2ca02c")
panel(2, "p99 latency of each 10 s window", "p99 (ms)", p99, "#d62728")
out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">'
           f'time since the soak began (s)</text>')
out.append("</svg>")
with open(svg_path, "w") as f:
    f.write("\n".join(out) + "\n")
