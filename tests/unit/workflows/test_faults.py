"""The per-run test-only switches (workflows/faults.py): ignored without TENANCY_TEST_FAULTS=1, which the
chart never sets; with it, a switched step fails before its side effect or pauses after it."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest
from tenancy_operator.workflows import engine, faults
from tenancy_operator.workflows.engine import Step, StepContext

REPO = Path(__file__).resolve().parents[3]


def _steps(done: list[str]) -> list[Step]:
    def make(name: str) -> Step:
        async def run(_: StepContext) -> dict[str, str]:
            done.append(name)
            return {name: "done"}

        async def undo(_: StepContext) -> None:
            done.append(f"undo {name}")

        return Step(name, run, undo, timeout=5, retries=3, backoff=0.01)

    return [make(n) for n in ("a", "b", "c")]


def _advance(steps: list[Step]) -> dict:
    persisted: list[dict] = []

    async def persist(status: dict) -> None:
        persisted.append(copy.deepcopy(status))

    ctx = StepContext(run="r", tenant="t", params={}, outputs={}, services=None)
    return asyncio.run(engine.advance(steps, {}, persist, ctx, sleep=lambda _: asyncio.sleep(0)))


def test_without_the_process_switch_the_annotations_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENABLED_BY, raising=False)
    done: list[str] = []
    steps = _steps(done)
    switched = faults.apply("w", steps, {faults.FAIL_STEP: "b", faults.PAUSE_STEP: "a"})
    assert switched is steps, "the registered steps, untouched"
    status = _advance(switched)
    assert status["phase"] == "Succeeded" and done == ["a", "b", "c"]
    monkeypatch.setenv(faults.ENABLED_BY, "true")  # only exactly "1" turns it on
    assert faults.apply("w", steps, {faults.FAIL_STEP: "b"}) is steps


def test_a_failed_step_is_not_retried_and_everything_that_ran_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.ENABLED_BY, "1")
    done: list[str] = []
    status = _advance(faults.apply("w", _steps(done), {faults.FAIL_STEP: "b"}))
    assert status["phase"] == "Failed" and status["compensated"] is True
    assert done == ["a", "undo b", "undo a"], "b failed before its side effect; its undo runs anyway (idempotent)"
    b = status["steps"][1]
    assert b["attempts"] == 1 and "test fault injected at w:b" in status["message"]
    assert [s["phase"] for s in status["steps"]] == ["Compensated", "Compensated", "Skipped"]


def test_no_switch_for_this_run_leaves_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.ENABLED_BY, "1")
    steps = _steps([])
    assert faults.apply("w", steps, {}) is steps and faults.apply("w", steps, None) is steps
    assert faults.apply("w", steps, {faults.FAIL_STEP: "no-such-step"}) == steps


def test_a_pause_waits_after_the_side_effect_until_the_marker_is_removed(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    marker = tmp_path / "paused"
    monkeypatch.setenv(faults.ENABLED_BY, "1")
    monkeypatch.setenv(faults.PAUSE_FILE, str(marker))
    done: list[str] = []
    steps = faults.apply("w", _steps(done), {faults.PAUSE_STEP: "b"})

    async def go() -> dict | None:
        task = asyncio.ensure_future(steps[1].run(StepContext(run="r", tenant="t", params={}, outputs={}, services=None)))
        for _ in range(200):
            if marker.exists():
                break
            await asyncio.sleep(0.01)
        assert marker.read_text() == "b" and done == ["b"], "paused after the side effect"
        await asyncio.sleep(0.3)
        assert not task.done(), "still paused while the marker is there"
        marker.unlink()
        return await asyncio.wait_for(task, 2)

    assert asyncio.run(go()) == {"b": "done"}


def test_the_chart_and_manifests_never_set_the_switch() -> None:
    for folder in ("charts", "manifests"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".yaml", ".yml", ".tpl", ".json", ".txt", ""):
                assert "TENANCY_TEST_" not in path.read_text(errors="replace"), path
