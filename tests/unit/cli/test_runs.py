"""`kubectl tenant run` / `runs` on recorded objects: parameters, step lines, the runs table, follow's exit code."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from tenancy_operator.cli import runs


def test_parse_params() -> None:
    assert runs.parse_params(["peers=a,b", "x=1=2"]) == {"peers": "a,b", "x": "1=2"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        runs.parse_params(["peers"])


def _run(phase: str, steps: list[dict]) -> dict:
    return {"metadata": {"name": "r1", "namespace": "tenant-acme", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"tenant": "acme", "workflow": "rotate-credentials"},
            "status": {"phase": phase, "currentStep": "wait-rotated", "steps": steps, "outputs": {"version": "3"}}}


def test_runs_table() -> None:
    text = runs.runs_text([_run("Running", [])], datetime(2026, 1, 1, 0, 5, tzinfo=UTC))
    header, row = text.splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "WORKFLOW", "TENANT", "PHASE", "STEP", "AGE"]
    assert row.split() == ["tenant-acme", "r1", "rotate-credentials", "acme", "Running", "wait-rotated", "5m"]
    assert "no WorkflowRuns" in runs.runs_text([], datetime.now(UTC))


class FakeKubectl:
    def __init__(self, states: list[dict]) -> None:
        self.states = states

    def run(self, *args: str, input: str | None = None) -> str:
        return json.dumps(self.states.pop(0) if len(self.states) > 1 else self.states[0])


def test_follow_prints_each_change_and_exits_by_phase() -> None:
    out = io.StringIO()
    states = [_run("Running", [{"name": "request-rotation", "phase": "Running", "attempts": 1}]),
              _run("Succeeded", [{"name": "request-rotation", "phase": "Succeeded", "attempts": 2}])]
    assert runs.follow(FakeKubectl(states), "r1", "tenant-acme", 10, out, interval=0) == 0
    text = out.getvalue()
    assert "tenant-acme/r1: Running" in text and "Succeeded     request-rotation x2" in text and "version: 3" in text
    failed = [_run("Failed", [])]
    assert runs.follow(FakeKubectl(failed), "r1", "tenant-acme", 10, io.StringIO(), interval=0) == 1


def test_ctrl_c_stops_following_only_and_says_how_to_cancel() -> None:
    class Interrupted(FakeKubectl):
        def run(self, *args: str, input: str | None = None) -> str:
            raise KeyboardInterrupt

    out = io.StringIO()
    assert runs.follow(Interrupted([]), "r1", "tenant-acme", 10, out, interval=0) == 130
    text = out.getvalue()
    assert "goes on" in text and "kubectl patch wfr r1 -n tenant-acme" in text and '"cancel":true' in text, text
