from tenancy_operator.api import conditions as cond


def test_unchanged_condition_reports_no_change_and_keeps_time():
    cs = []
    assert cond.set_condition(cs, "Ready", "True", "Succeeded", "ok", 1, now="t1")
    assert not cond.set_condition(cs, "Ready", "True", "Succeeded", "ok", 1, now="t2")
    assert cs[0]["lastTransitionTime"] == "t1"


def test_message_change_is_a_change_but_not_a_transition():
    cs = []
    cond.set_condition(cs, "Ready", "False", "A", "x", 1, now="t1")
    assert cond.set_condition(cs, "Ready", "False", "A", "y", 1, now="t2")
    assert cs[0]["lastTransitionTime"] == "t1"


def test_status_flip_moves_transition_time():
    cs = []
    cond.set_condition(cs, "Ready", "False", "A", "x", 1, now="t1")
    cond.set_condition(cs, "Ready", "True", "B", "y", 2, now="t2")
    assert cs[0] == {"type": "Ready", "status": "True", "reason": "B", "message": "y",
                     "observedGeneration": 2, "lastTransitionTime": "t2"}
