"""The bench's output: the table per N, the targets beside the numbers, slopes against N, RESULTS.md, the plot."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

from .run import FIELDS

# Per-tenant figures whose slope against N says whether a tenant costs more in a bigger fleet.
SLOPED = ("p50", "p95", "max", "writes_per_tenant", "api_requests_per_tenant", "api_reads_per_tenant", "calls_per_tenant", "postgres_per_tenant", "redis_per_tenant",
          "openbao_per_tenant", "cpu_per_tenant", "verify_ms", "verify_cpu_ms", "verify_calls", "verify_postgres",
          "verify_redis", "verify_openbao", "verify_api_reads", "rss_mb", "rss_held_mb", "wall")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), {mem} MB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, load average at the end {load}")


def slope(rows: list[dict], key: str) -> float | None:
    """Least-squares slope of `key` against N (per tenant added) from N=10 on (N=1's figures carry the
    fixed background: Backend probes, the bench's own reads), None with fewer than 2 sizes."""
    points = [(r["n"], r[key]) for r in rows if key in r and (r["n"] >= 10 or len(rows) < 3)]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else None


def table(rows: list[dict]) -> str:
    """Markdown: one line per figure, one column per N."""
    head = "| figure | " + " | ".join(f"N={r['n']}" for r in rows) + " | slope per +100 N |"
    lines = [head, "|" + "---|" * (len(rows) + 2)]
    for key, (title, fmt) in FIELDS.items():
        if key == "n":
            continue
        cells = [fmt.format(r[key]) if key in r else "-" for r in rows]
        s = slope(rows, key) if key in SLOPED else None
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {'' if s is None else f'{100 * s:+.3g}'} |")
    return "\n".join(lines)


def targets(rows: list[dict]) -> list[str]:
    """Each target of issue 20, the measurement beside it (or why there is none); not asserted."""
    by_n = {r["n"]: r for r in rows}
    out = []
    one = by_n.get(1)
    if one:
        trials = one.get("trials", 1)
        out.append(f"one tenant apply-to-Ready p50 <= 0.25 s: {one['p50']:.2f} s "
                   f"({'met' if one['p50'] <= 0.25 else 'MISSED'}; {trials} single-tenant applies)")
        out.append(f"one tenant apply-to-Ready p95 <= 0.5 s: {one['p95']:.2f} s "
                   f"({'met' if one['p95'] <= 0.5 else 'MISSED'})")
    else:
        out.append("one tenant p50 <= 0.25 s, p95 <= 0.5 s: N=1 not run")
    big = by_n.get(500)
    out.append("500 applied at once all Ready within 60 s: "
               + (f"{big['wall']:.1f} s ({'met' if big['wall'] <= 60 else 'MISSED'})" if big else
                  "N=500 not run" + _extrapolated(rows, "wall", 500, " s")))
    top = by_n.get(1000)
    if top:
        held = top.get("rss_held_mb", top["rss_mb"])
        out.append(f"1000 held at <= 250 MB RSS: {held:.0f} MB, the highest sample of the idle window "
                   f"({'met' if held <= 250 else 'MISSED'}; median {top.get('rss_idle_median_mb', held):.0f}, "
                   f"{top['rss_mb']:.0f} at the last Ready, "
                   f"peak {top.get('rss_peak_mb', 0):.0f})")
        if "idle_s" in top:
            idle_writes = top["idle_api_writes"] + top["idle_backend_writes"]
            out.append(f"1000 idle with 0 writes: {top['idle_api_writes']} API, {top['idle_backend_writes']} backend "
                       f"in {top['idle_s']:.0f} s ({'met' if idle_writes == 0 else 'MISSED'})")
        else:
            out.append("1000 idle with 0 writes: no idle window run (--idle-seconds 0)")
    else:
        out.append("1000 held at <= 250 MB RSS: N=1000 not run" + _extrapolated(rows, "rss_mb", 1000, " MB"))
        idle = [f"N={r['n']}: {r['idle_api_writes']} API + {r['idle_backend_writes']} backend in {r['idle_s']:.0f} s"
                for r in rows if "idle_s" in r]
        out.append("0 writes in the idle window: N=1000 not run; " + "; ".join(idle))
    flat = [f"{FIELDS[k][0]} {100 * s:+.3g}" for k in ("p50", "writes_per_tenant", "api_reads_per_tenant",
                                                     "calls_per_tenant", "cpu_per_tenant", "verify_cpu_ms")
            if (s := slope(rows, k)) is not None]
    out.append("per-tenant cost flat in N (slope per +100 N): " + ("; ".join(flat) if flat else "one size only"))
    return out


def _extrapolated(rows: list[dict], key: str, n: int, unit: str) -> str:
    s = slope(rows, key)
    if s is None or len(rows) < 3:
        return ""
    last = max(rows, key=lambda r: r["n"])
    return f" (straight-line guess from N<={last['n']}: {last[key] + s * (n - last['n']):.0f}{unit}, not a measurement)"


def render(rows: list[dict], settings: str, profiles: dict[int, str] | None = None) -> str:
    """The run's section of RESULTS.md: table, targets, per-size details and, for the sizes profiled
    (`--profile-largest`), py-spy's summary of where the operator's time went."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    parts = [f"### Run of {when}", "", f"{when}, commit {commit}; {machine()}", "", settings, "", table(rows), "",
             "Targets (printed, not asserted):", ""] + [f"- {t}" for t in targets(rows)] + [""]
    for r in rows:
        parts.append(f"- N={r['n']}: operator writes in the batch {r.get('top_requests')}; "
                     f"reads the API server served (server-wide) {r.get('top_reads')}; "
                     f"idle writes {r.get('idle_detail') or 'none'}"
                     + (f"; idle Events {r['idle_events']}" if r.get("idle_events") else "")
                     + (f"; Backend status fields changed in the idle window {r['idle_backend_status']}"
                        if r.get("idle_backend_status") else ""))
    for n, summary in sorted((profiles or {}).items()):
        parts += ["", f"Profile of the N={n} batch (py-spy, the operator from the create to the last Ready):", "",
                  "```", summary.strip("\n"), "```"]
    return "\n".join(parts) + "\n"


def append_results(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else "# Fleet scale bench (`make bench-scale`)\n\n"
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def plot(rows: list[dict], path: Path) -> None:
    """Apply-to-Ready p50/p95/max and batch wall time, and operator RSS, against N (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("p50", "apply-to-Ready p50"), ("p95", "p95"), ("max", "max"), ("wall", "batch wall")):
        left.plot(ns, [r[key] for r in rows], marker="o", label=label)
    left.set(xscale="log", yscale="log", xlabel="tenants applied at once (N)", ylabel="seconds", title="Time")
    left.legend()
    right.plot(ns, [r["rss_mb"] for r in rows], marker="o", label="RSS when all Ready")
    right.plot(ns, [r["rss_peak_mb"] for r in rows], marker="o", label="peak RSS")
    right.axhline(250, color="grey", linestyle="--", label="target at N=1000")
    right.set(xscale="log", xlabel="tenants (N)", ylabel="MB", title="Operator memory")
    right.set_ylim(bottom=0)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
