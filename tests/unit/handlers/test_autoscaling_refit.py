"""The handler's hourly refit hands fit_rule the rule's last fit: between model refits it re-scores."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
from tenancy_operator.api.tenant import AutoscalingRule
from tenancy_operator.handlers import autoscaling_rules
from tenancy_operator.reconcile import rule_forecast as rf


def test_the_hourly_refit_rescores_with_the_models_of_the_last_model_refit(monkeypatch):
    cfg = rf.feature_config("1m", "2m")
    n = 3 * cfg.day
    tod = np.arange(n) % cfg.day
    y = 100.0 + np.where((tod >= 600) & (tod < 700), 80.0, 0.0)

    async def history(query, now):
        return now - 60.0 * (n - 1), y

    monkeypatch.setattr(autoscaling_rules, "history", history)
    # a rule re-scores once its history fills the window (here: three days)
    monkeypatch.setattr(autoscaling_rules, "SETTINGS", dataclasses.replace(autoscaling_rules.SETTINGS, history_s=60 * n))
    st = autoscaling_rules.RuleState(("q", "1m", "2m"), cfg)
    asyncio.run(autoscaling_rules.refit(st, "acme", "web"))
    first = st.fitted
    assert first is not None and first.models and first.models_fitted_at == first.fitted_at
    asyncio.run(autoscaling_rules.refit(st, "acme", "web"))
    assert st.fitted is not first and st.fitted.models is first.models  # re-scored: the same models
    assert st.fitted.models_fitted_at == first.models_fitted_at and st.fitted.fitted_at > first.fitted_at


def test_the_refit_sizes_the_ramp_hold_by_the_rule_s_target_utilisation(monkeypatch):
    """Over a 75% target the hold's default 75% of the plateau would serve less than the plateau
    while the HPA scales up: the share grows with the rule's targetUtilization (percent)."""
    cfg = rf.feature_config("1m", "2m")
    n = 3 * cfg.day
    y = 100.0 + np.where((np.arange(n) % cfg.day >= 600) & (np.arange(n) % cfg.day < 700), 80.0, 0.0)

    async def history(query, now):
        return now - 60.0 * (n - 1), y

    monkeypatch.setattr(autoscaling_rules, "history", history)
    shares = {}
    for target in (0.7, 0.95):
        rule = AutoscalingRule.model_validate({
            "name": "web", "targetRef": {"name": "web"}, "metric": {"prometheus": "q"}, "capacityPerReplica": 50,
            "maxReplicas": 20, "targetUtilization": round(100 * target), "leadTime": "1m", "window": "2m"})
        autoscaling_rules.forget("acme")
        st = autoscaling_rules.rule_state("acme", rule)  # as the handler reads the rule
        asyncio.run(autoscaling_rules.refit(st, "acme", "web"))
        shares[target] = st.fitted.model.hold_cfg.plateau_share
    assert shares == {0.7: 0.75, 0.95: 1.0}
    # a rule whose target changes is re-scored at its next pass, not served the old hold for an hour
    soon = time.time() + autoscaling_rules.RETRY_FETCH_S + 1
    assert not autoscaling_rules.needs_refit(st, soon)
    assert autoscaling_rules.rule_state("acme", rule.model_copy(update={"target_utilization": 90})) is st
    assert autoscaling_rules.needs_refit(st, soon)
    autoscaling_rules.forget("acme")
