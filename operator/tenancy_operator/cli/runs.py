"""`kubectl tenant run` and `kubectl tenant runs`: start a WorkflowRun and follow its steps; list runs.

    kubectl tenant run verify-isolation acme --param peers=globex    create the run, print each step as it moves
    kubectl tenant run offboard acme -n tenancy-system               workflows other than the tenant-safe ones
    kubectl tenant run restore acme2 -n tenancy-system --param archive=ID   load an archive into Tenant acme2
    kubectl tenant runs [-n NS | -A]                                 a table of runs

A run is created in the tenant's namespace (`tenant-<name>`) unless -n names another; the API
server decides whether that namespace may run that workflow. The exit code is 0 when the run
Succeeded, 1 when it failed or was cancelled, 2 when following stopped at --timeout, 130 when
following was interrupted (Ctrl-C stops following only: the run goes on, and the message says how
to cancel it).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any

from . import kubeapi, render

__all__ = ["create", "follow", "runs_text", "parse_params", "step_lines"]

FINAL = ("Succeeded", "Failed", "Cancelled")


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`k=v` pairs; ValueError names the one without `=`."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def create(kubectl: kubeapi.Kubectl, workflow: str, tenant: str, namespace: str, params: dict[str, str]) -> str:
    """Create the run (generateName `<workflow>-`); returns its name."""
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun",
            "metadata": {"generateName": f"{workflow}-", "namespace": namespace},
            "spec": {"tenant": tenant, "workflow": workflow, "parameters": params}}
    out = kubectl.run("create", "-f", "-", "-o", "json", input=json.dumps(body))
    return json.loads(out)["metadata"]["name"]


def step_lines(status: dict[str, Any]) -> list[str]:
    """One line per step: `  <phase> <name> (attempts) <message>`."""
    lines = []
    for step in status.get("steps") or []:
        extra = f" x{step['attempts']}" if step.get("attempts", 0) > 1 else ""
        message = f"  {step['message']}" if step.get("message") else ""
        lines.append(f"  {step.get('phase', ''):<13} {step['name']}{extra}{message}")
    return lines


def follow(kubectl: kubeapi.Kubectl, name: str, namespace: str, timeout: float, out=sys.stdout,
           interval: float = 1.0) -> int:
    """Print each change of the run's phase and steps until it ends; the exit code (see module doc)."""
    try:
        return _follow(kubectl, name, namespace, timeout, out, interval)
    except KeyboardInterrupt:
        out.write(f"\nstopped following; workflowrun {name} goes on in {namespace}. Follow it with "
                  f"`kubectl get wfr {name} -n {namespace} -w`, cancel it with `kubectl patch wfr {name} "
                  f"-n {namespace} --type=merge -p '{{\"spec\":{{\"cancel\":true}}}}'`\n")
        out.flush()
        return 130


def _follow(kubectl: kubeapi.Kubectl, name: str, namespace: str, timeout: float, out, interval: float) -> int:
    deadline, last = time.monotonic() + timeout, None
    while True:
        run = json.loads(kubectl.run("get", "workflowruns.tenancy.dev", name, "-n", namespace, "-o", "json"))
        status = run.get("status") or {}
        phase = status.get("phase") or "Pending"
        shown = [f"{namespace}/{name}: {phase}" + (f" ({status['message']})" if status.get("message") else ""),
                 *step_lines(status)]
        if shown != last:
            out.write("\n".join(shown) + "\n")
            out.flush()
            last = shown
        if phase in FINAL:
            for key, value in sorted((status.get("outputs") or {}).items()):
                out.write(f"  {key}: {' '.join(str(value).split())}\n")  # one line each (servers' errors hold newlines)
            return 0 if phase == "Succeeded" else 1
        if time.monotonic() > deadline:
            out.write(f"still {phase} after {timeout:.0f}s; follow with "
                      f"`kubectl get wfr {name} -n {namespace} -w`\n")
            return 2
        time.sleep(interval)


def runs_text(runs: list[dict[str, Any]], now: datetime) -> str:
    rows = [["NAMESPACE", "NAME", "WORKFLOW", "TENANT", "PHASE", "STEP", "AGE"]]
    for run in sorted(runs, key=lambda r: r["metadata"].get("creationTimestamp") or "", reverse=True):
        status, spec = run.get("status") or {}, run.get("spec") or {}
        rows.append([run["metadata"].get("namespace", ""), run["metadata"]["name"], spec.get("workflow", ""),
                     spec.get("tenant", ""), status.get("phase") or "Pending", status.get("currentStep") or "-",
                     render.age(render.parse_time(run["metadata"].get("creationTimestamp")), now)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if len(rows) == 1:
        lines.append("no WorkflowRuns")
    return "\n".join(lines) + "\n"
