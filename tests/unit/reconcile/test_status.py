from tenancy_operator.api import conditions as cond
from tenancy_operator.reconcile.status import PartResult, summarize


def _status(conds, type_):
    return cond.get_condition(conds, type_)["status"]


def test_all_ready():
    conds, phase, changed = summarize([], [PartResult("NamespaceReady", True, "Succeeded", "ok")], 3, "Active")
    assert phase == "Ready"
    assert (_status(conds, "Ready"), _status(conds, "Reconciling"), _status(conds, "Stalled")) == ("True", "False", "False")
    assert all(c["observedGeneration"] == 3 for c in conds)
    assert "Ready" in changed


def test_suspended_is_ready():
    conds, phase, _ = summarize([], [PartResult("NamespaceReady", True, "Succeeded", "ok")], 1, "Suspended")
    assert phase == "Suspended" and _status(conds, "Ready") == "True"


def test_outage_is_reconciling_and_degraded():
    parts = [PartResult("NamespaceReady", True, "Succeeded", "ok"),
             PartResult("DatabaseReady", False, "BackendUnavailable", "backend pg-main unreachable", outage=True)]
    conds, phase, _ = summarize([], parts, 1, "Active")
    assert phase == "Degraded"
    assert (_status(conds, "Ready"), _status(conds, "Reconciling"), _status(conds, "Degraded")) == ("False", "True", "True")
    assert "pg-main" in cond.get_condition(conds, "Ready")["message"]


def test_stalled():
    parts = [PartResult("NamespaceReady", False, "NamespaceOwnedElsewhere", "taken", stalled=True)]
    conds, phase, _ = summarize([], parts, 1, "Active")
    assert phase == "Stalled"
    assert (_status(conds, "Stalled"), _status(conds, "Reconciling"), _status(conds, "Ready")) == ("True", "False", "False")


def test_second_identical_summary_changes_nothing():
    parts = [PartResult("NamespaceReady", True, "Succeeded", "ok")]
    conds, _, _ = summarize([], parts, 1, "Active", now="t1")
    again, _, changed = summarize(conds, parts, 1, "Active", now="t2")
    assert changed == [] and again == conds


def test_conditions_first_written_in_their_normal_state_post_no_event_but_ready():
    # A creation: Reconciling=True came first (its own Event), then the pass ends Ready.
    reconciling = [{"type": "Reconciling", "status": "True", "reason": "SpecChanged", "message": "applying generation 1",
                    "observedGeneration": 1, "lastTransitionTime": "t0"}]
    conds, _, changed = summarize(reconciling, [PartResult("NamespaceReady", True, "Succeeded", "ok")], 1, "Active")
    assert _status(conds, "Stalled") == "False" and _status(conds, "Degraded") == "False"  # still in the status
    assert _status(conds, "NamespaceReady") == "True"
    # NamespaceReady=True, Stalled=False, Degraded=False first written: no Event
    assert sorted(changed) == ["Ready", "Reconciling"]


def test_a_part_first_written_failing_or_unknown_is_an_event():
    _, _, changed = summarize([], [PartResult("NamespaceReady", False, "Forbidden", "no")], 1, "Active")
    assert "NamespaceReady" in changed
    _, _, changed = summarize([], [PartResult("NamespaceReady", None, "Waiting", "?")], 1, "Active")
    assert "NamespaceReady" in changed


def test_a_new_generation_alone_posts_no_event():
    parts = [PartResult("NamespaceReady", True, "Succeeded", "ok")]
    conds, _, _ = summarize([], parts, 1, "Active", now="t1")
    again, _, changed = summarize(conds, parts, 2, "Active", now="t2")
    assert changed == [], "only observedGeneration moved"
    assert {c["observedGeneration"] for c in again} == {2}, "the status still says which generation it saw"


def test_an_abnormal_condition_clearing_is_still_an_event():
    outage = [PartResult("DatabaseReady", False, "BackendUnavailable", "backend pg-main unreachable", outage=True)]
    conds, _, _ = summarize([], outage, 1, "Active")
    conds, _, changed = summarize(conds, [PartResult("DatabaseReady", True, "Succeeded", "ok")], 1, "Active")
    assert "Degraded" in changed and "Reconciling" in changed and "Ready" in changed
    stalled = [PartResult("NamespaceReady", False, "NamespaceOwnedElsewhere", "taken", stalled=True)]
    conds, _, changed = summarize([], stalled, 1, "Active")
    assert "Stalled" in changed
    conds, _, changed = summarize(conds, [PartResult("NamespaceReady", True, "Succeeded", "ok")], 1, "Active")
    assert "Stalled" in changed


def test_a_part_first_written_at_its_limit_is_an_event():
    """SearchReady True with reason LimitReached (a shard limit reached by adopted indices) needs a
    person: its first writing posts (a Warning), though True is the part's normal status."""
    _, _, changed = summarize([], [PartResult("SearchReady", True, "LimitReached", "5 of 5 shards")], 1, "Active")
    assert "SearchReady" in changed
