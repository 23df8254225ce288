"""The saga engine on plain data: order, retries, compensation, cancel, and resuming after a kill."""

from __future__ import annotations

import asyncio
import copy

import pytest
from tenancy_operator.workflows import engine
from tenancy_operator.workflows.engine import Step, StepContext, StepFailed


class World:
    def __init__(self) -> None:
        self.done: list[str] = []
        self.persisted: list[dict] = []

    async def persist(self, status: dict) -> None:
        self.persisted.append(copy.deepcopy(status))


def ctx() -> StepContext:
    return StepContext(run="r", tenant="t", params={}, outputs={}, services=None)


async def no_sleep(_: float) -> None:
    return None


def steps(world: World, fail_at: str = "", flaky: dict[str, int] | None = None) -> list[Step]:
    flaky = dict(flaky or {})

    def make(name: str) -> Step:
        async def run(c: StepContext) -> dict[str, str]:
            if name == fail_at:
                raise RuntimeError(f"{name} broke")
            if flaky.get(name, 0) > 0:
                flaky[name] -= 1
                raise ConnectionError("try again")
            world.done.append(name)
            return {name: "done", "seen": ",".join(sorted(c.outputs))}

        async def undo(_: StepContext) -> None:
            world.done.append(f"undo {name}")

        return Step(name, run, undo, timeout=1, retries=2, backoff=0.01)

    return [make(n) for n in ("a", "b", "c")]


def test_runs_in_order_and_merges_outputs() -> None:
    w = World()
    status = asyncio.run(engine.advance(steps(w), {}, w.persist, ctx(), sleep=no_sleep))
    assert w.done == ["a", "b", "c"]
    assert status["phase"] == "Succeeded" and [s["phase"] for s in status["steps"]] == ["Succeeded"] * 3
    assert status["outputs"]["c"] == "done" and status["outputs"]["seen"] == "a,b,seen"
    # Written before and after each side effect.
    assert [p["steps"][0]["phase"] for p in w.persisted[:2]] == ["Running", "Succeeded"]


def test_retries_with_backoff_then_succeeds() -> None:
    w = World()
    status = asyncio.run(engine.advance(steps(w, flaky={"b": 2}), {}, w.persist, ctx(), sleep=no_sleep))
    assert status["phase"] == "Succeeded" and status["steps"][1]["attempts"] == 3


def test_failure_compensates_in_reverse_and_skips_the_rest() -> None:
    w = World()
    status = asyncio.run(engine.advance(steps(w, fail_at="b"), {}, w.persist, ctx(), sleep=no_sleep))
    assert w.done == ["a", "undo b", "undo a"]
    assert status["phase"] == "Failed" and status["compensated"] is True
    assert [s["phase"] for s in status["steps"]] == ["Compensated", "Compensated", "Skipped"]
    assert status["steps"][1]["attempts"] == 3 and "b broke" in status["message"]


def test_a_killed_run_resumes_without_repeating_completed_steps() -> None:
    w = World()
    asyncio.run(engine.advance(steps(w), {}, w.persist, ctx(), sleep=no_sleep))
    # The state persisted just before step b's side effect (b Running): as if killed there.
    killed = next(p for p in w.persisted if p["steps"][1]["phase"] == "Running")
    again = World()
    status = asyncio.run(engine.advance(steps(again), copy.deepcopy(killed), again.persist, ctx(), sleep=no_sleep))
    assert again.done == ["b", "c"] and status["phase"] == "Succeeded"
    assert status["steps"][1]["attempts"] == 2


def test_a_final_run_does_nothing() -> None:
    w = World()
    final = asyncio.run(engine.advance(steps(w), {}, w.persist, ctx(), sleep=no_sleep))
    again = World()
    asyncio.run(engine.advance(steps(again), copy.deepcopy(final), again.persist, ctx()))
    assert again.done == [] and again.persisted == []


def test_cancel_stops_a_running_step_and_compensates() -> None:
    w = World()
    flag = {"cancel": False}

    async def slow(_: StepContext) -> None:
        flag["cancel"] = True
        await asyncio.sleep(5)

    async def undo(_: StepContext) -> None:
        w.done.append("undo slow")

    plan = [steps(w)[0], Step("slow", slow, undo), steps(w)[2]]
    status = asyncio.run(engine.advance(plan, {}, w.persist, ctx(), lambda: flag["cancel"], poll=0.01))
    assert status["phase"] == "Cancelled"
    assert w.done == ["a", "undo slow", "undo a"]
    assert [s["phase"] for s in status["steps"]] == ["Compensated", "Compensated", "Skipped"]


def test_step_failed_is_final_and_keeps_its_report() -> None:
    w = World()

    async def probe(_: StepContext) -> None:
        raise StepFailed("probe X allowed", {"probe X": "ALLOWED"})

    status = asyncio.run(engine.advance([Step("probe", probe, retries=5)], {}, w.persist, ctx(), sleep=no_sleep))
    assert status["phase"] == "Failed" and status["steps"][0]["attempts"] == 1
    assert status["outputs"] == {"probe X": "ALLOWED"} and "probe X allowed" in status["message"]


def test_timeout_counts_as_a_failed_attempt() -> None:
    w = World()

    async def hang(_: StepContext) -> None:
        await asyncio.sleep(5)

    status = asyncio.run(engine.advance([Step("hang", hang, timeout=0.05, retries=0)], {}, w.persist, ctx()))
    assert status["phase"] == "Failed" and "timed out" in status["message"]


def test_recorded_steps_must_match_the_workflow() -> None:
    w = World()
    with pytest.raises(ValueError):
        asyncio.run(engine.advance(steps(w), {"steps": [{"name": "x", "phase": "Pending"}]}, w.persist, ctx()))
