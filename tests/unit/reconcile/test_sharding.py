"""Sharding rule: a stable hash, a sticky label, one owner for every Tenant whatever its label says."""

import hashlib
import subprocess
import sys

import pytest
from tenancy_operator.reconcile import sharding


def test_the_hash_is_sha256_of_the_name_not_pythons_salted_hash():
    want = int.from_bytes(hashlib.sha256(b"acme").digest()[:8], "big") % 7
    assert sharding.shard_of("acme", 7) == want
    # Another interpreter (another PYTHONHASHSEED) gets the same shard.
    code = "from tenancy_operator.reconcile import sharding; print(sharding.shard_of('acme', 7))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout
    assert int(out) == want


def test_names_spread_over_every_shard():
    counts = [0, 0, 0, 0]
    for i in range(4000):
        counts[sharding.shard_of(f"tenant-{i}", 4)] += 1
    assert all(800 < c < 1200 for c in counts), counts


def test_unsharded_everything_is_shard_zero():
    assert sharding.shard_of("acme", 1) == 0
    assert sharding.owner("acme", {sharding.LABEL: "3"}, 1) == 0
    assert sharding.finalizer(0, 1) == "tenancy.dev/finalizer"


def test_a_valid_label_wins_over_the_hash_so_a_tenant_keeps_its_shard():
    name = next(f"t{i}" for i in range(100) if sharding.shard_of(f"t{i}", 2) == 0)
    assert sharding.owner(name, {}, 2) == 0
    assert sharding.owner(name, {sharding.LABEL: "1"}, 2) == 1


@pytest.mark.parametrize("label", ["2", "7", "-1", "01", "x", "", " 1"])
def test_a_label_naming_no_shard_falls_back_to_the_hash(label):
    assert sharding.labelled({sharding.LABEL: label}, 2) is None
    assert sharding.owner("acme", {sharding.LABEL: label}, 2) == sharding.shard_of("acme", 2)


def test_every_tenant_has_exactly_one_owner_among_the_shards():
    for labels in ({}, {sharding.LABEL: "0"}, {sharding.LABEL: "1"}, {sharding.LABEL: "2"}, {sharding.LABEL: "z"}):
        for name in ("a", "acme", "tenant-17"):
            owners = [i for i in range(3) if sharding.owner(name, labels, 3) == i]
            assert len(owners) == 1


def test_shards_have_distinct_finalizers_and_shard_zero_keeps_the_historical_one():
    names = {sharding.finalizer(i, 4) for i in range(4)}
    assert len(names) == 4 and "tenancy.dev/finalizer" in names


def test_stale_finalizers_are_those_of_shards_that_no_longer_run():
    present = ["tenancy.dev/finalizer", "tenancy.dev/finalizer-shard-1", "tenancy.dev/finalizer-shard-3",
               "example.com/other"]
    assert sharding.stale_finalizers(present, 2) == ["tenancy.dev/finalizer-shard-3"]
    assert sharding.stale_finalizers(present, 1) == ["tenancy.dev/finalizer-shard-1", "tenancy.dev/finalizer-shard-3"]
    assert sharding.stale_finalizers(present, 4) == []
