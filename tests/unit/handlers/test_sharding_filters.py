"""Sharding's kopf glue: the filters, the settings, and the diff base that ignores the shard label."""

import dataclasses

import pytest
from tenancy_operator.handlers import config, sharding
from tenancy_operator.reconcile.sharding import LABEL, shard_of


@pytest.fixture
def shard(monkeypatch):
    def use(i: int, n: int) -> None:
        monkeypatch.setattr(sharding, "CFG", dataclasses.replace(config.Config(), shard=i, shards=n))
    return use


def test_settings_come_from_the_environment_and_are_checked(monkeypatch):
    assert (config.load().shards, config.load().shard) == (1, 0)
    monkeypatch.setenv("TENANCY_SHARDS", "4")
    monkeypatch.setenv("TENANCY_SHARD", "3")
    assert (config.load().shards, config.load().shard, config.load().sharded) == (4, 3, True)
    monkeypatch.setenv("TENANCY_SHARD", "4")
    with pytest.raises(ValueError, match="0 to shards-1"):
        config.load()


def test_unsharded_every_filter_passes(shard):
    shard(0, 1)
    assert sharding.owns_tenant("acme", {LABEL: "5"})
    assert sharding.owns_run({"tenant": "acme"}, {})
    assert sharding.leads()


def test_each_tenant_passes_the_filter_of_exactly_one_shard(shard):
    for labels in ({}, {LABEL: "0"}, {LABEL: "1"}, {LABEL: "9"}):
        owners = []
        for i in range(2):
            shard(i, 2)
            if sharding.owns_tenant("acme", labels):
                owners.append(i)
        assert len(owners) == 1, labels
    shard(1, 2)
    assert not sharding.leads()


def test_a_run_goes_to_its_tenants_shard(shard):
    name = next(f"t{i}" for i in range(100) if shard_of(f"t{i}", 2) == 0)
    index = {name: {"1"}}  # labelled (moved) to shard 1, against its hash
    shard(1, 2)
    assert sharding.owns_run({"tenant": name}, index)
    assert not sharding.owns_run({"tenant": name}, {})  # unlabelled: its hash, shard 0
    shard(0, 2)
    assert not sharding.owns_run({"tenant": name}, index)


def test_the_shard_label_is_not_part_of_the_essence():
    storage = sharding.DiffBase(prefix="tenancy.dev", key="last-handled-configuration")
    plain = {"metadata": {"name": "a"}, "spec": {"x": 1}}
    labelled = {"metadata": {"name": "a", "labels": {LABEL: "1"}}, "spec": {"x": 1}}
    other = {"metadata": {"name": "a", "labels": {LABEL: "1", "team": "b"}}, "spec": {"x": 1}}
    def build(raw):
        return storage.build(body=sharding.kopf.Body(raw))
    assert build(plain) == build(labelled)
    assert build(other)["metadata"]["labels"] == {"team": "b"}


def test_annotations_that_ask_for_a_pass_are_part_of_the_essence():
    # kopf drops every tenancy.dev/ annotation (its storages' prefix) from the essence it diffs, in the
    # diff base's build and again in the progress storage's clear: `kubectl tenant rotate` and removing
    # the inactivity mark waited for the verify timer instead of starting a pass. As kopf's processing
    # does it (kopf/_core/reactor/processing.py): build, clear, diff.
    from kopf._cogs.structs import diffs

    storage = sharding.DiffBase(prefix="tenancy.dev", key="last-handled-configuration")
    progress = sharding.ProgressStorage(prefix="tenancy.dev")
    def essence(annotations):
        body = sharding.kopf.Body({"metadata": {"name": "a", "annotations": annotations}, "spec": {"x": 1}})
        return progress.clear(essence=storage.build(body=body))
    handled = {"tenancy.dev/kopf-managed": "yes", "tenancy.dev/last-handled-configuration": "{}"}  # as kopf marks them
    plain = essence(handled)
    rotated = essence({**handled, "tenancy.dev/rotate": "2026-12-07T22:00:00Z"})
    assert rotated["metadata"]["annotations"] == {"tenancy.dev/rotate": "2026-12-07T22:00:00Z"}
    assert diffs.diff(plain, rotated)
    assert diffs.diff(rotated, essence({**handled, "tenancy.dev/rotate": "b"}))
    suspended = essence({**handled, "tenancy.dev/suspended-for-inactivity": "2026-12-07T22:00:00Z"})
    assert diffs.diff(suspended, plain)  # the mark removed (`kubectl tenant resume`)
    # the operator's own bookkeeping and kopf's progress still are not: writing them starts no pass
    assert not diffs.diff(plain, essence({**handled, "tenancy.dev/x": "1", "tenancy.dev/changed": "{}"}))


def test_stale_finalizers_go_with_kopfs_own_patch(shard):
    shard(0, 1)
    patch = sharding.kopf.Patch()
    sharding.drop_stale_finalizers({"finalizers": ["tenancy.dev/finalizer", "tenancy.dev/finalizer-shard-1"]}, patch)
    body = {"metadata": {"finalizers": ["tenancy.dev/finalizer", "tenancy.dev/finalizer-shard-1", "x"]}}
    for fn in patch.fns:
        fn(body)
    assert body["metadata"]["finalizers"] == ["tenancy.dev/finalizer", "x"]
    empty = sharding.kopf.Patch()
    sharding.drop_stale_finalizers({"finalizers": ["tenancy.dev/finalizer"]}, empty)
    assert not empty.fns
