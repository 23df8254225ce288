"""Draw a Grafana dashboard of the chart from a Prometheus query API, with matplotlib, into a PNG.

There is no Grafana on the local platform: Debian does not package it, its Go module gives a server
without the web front end (built from Grafana's own repository with its Node toolchain), and drawing a
panel to PNG takes its image renderer plugin with a headless Chromium, which cannot be fetched here.
So this draws the same panel queries the dashboard holds, with Grafana's variables filled in, from
Prometheus's `query_range`: the picture in docs/observability.md is real data of the local platform.

    python hack/render_dashboard.py charts/tenancy-operator/dashboards/fleet-overview.json docs/img/x.png \
        [--prometheus URL] [--minutes 30] [--var tenant=acme]

Needs matplotlib (`pip install -e '.[docs]'`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime


def query_range(base: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def legend(fmt: str | None, labels: dict[str, str]) -> str:
    if not fmt:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "value"
    out = fmt
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    return out


def fill(expr: str, variables: dict[str, str], step: float) -> str:
    values = {"$__rate_interval": f"{max(int(step * 4), 60)}s", "$__interval": f"{int(step)}s",
              **{f"${k}": v for k, v in variables.items()}}
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


def render(dashboard: dict, out: str, base: str, minutes: float, variables: dict[str, str]) -> int:
    """Draw every panel (timeseries and stat alike, as lines); returns how many series were drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(14, 3.1 * rows), squeeze=False)
    end = time.time()
    start = end - minutes * 60
    step = max(5.0, minutes * 60 / 240)
    drawn = 0
    for ax, panel in zip(axes.flat, panels, strict=False):
        for target in panel.get("targets", []):
            for series in query_range(base, fill(target["expr"], variables, step), start, end, step):
                xs = [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ax.plot(xs, ys, label=legend(target.get("legendFormat"), series["metric"]), linewidth=1.4)
                drawn += 1
        unit = (panel.get("fieldConfig", {}).get("defaults", {}) or {}).get("unit")
        ax.set_title(panel["title"] + (f"  [{unit}]" if unit else ""), fontsize=10, loc="left")
        ax.set_xlim(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7, loc="upper left", ncol=2, framealpha=0.6)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    stamp = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(f"{dashboard['title']}: last {minutes:g} min to {stamp}, from {base} (query_range, step {step:g}s)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=90)
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dashboard")
    parser.add_argument("out")
    parser.add_argument("--prometheus", default=os.environ.get("TENANCY_PROMETHEUS_URL", "http://127.0.0.1:19090"))
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--var", action="append", default=[], help="name=value for a dashboard variable")
    args = parser.parse_args()
    dashboard = json.load(open(args.dashboard))
    variables = dict(v.split("=", 1) for v in args.var)
    drawn = render(dashboard, args.out, args.prometheus.rstrip("/"), args.minutes, variables)
    print(f"{args.out}: {drawn} series in {len(dashboard['panels'])} panels")


if __name__ == "__main__":
    main()
