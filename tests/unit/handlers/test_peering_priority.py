"""Peering priorities: distinct per replica (kopf pauses every operator that sees an equal one), and
the oldest replica leads, so a newly started pod stands by instead of taking over."""

import random

from tenancy_operator.handlers.settings import seniority_priority


def test_an_older_replica_outranks_a_newer_one_whatever_the_random_part():
    older = seniority_priority(1_800_000_000.0, random.Random(1))
    newer = seniority_priority(1_800_000_001.0, random.Random(2))
    assert older > newer
    assert max(seniority_priority(1_800_000_001.0, random.Random(k)) for k in range(200)) < min(
        seniority_priority(1_800_000_000.0, random.Random(k)) for k in range(200))


def test_replicas_started_in_the_same_second_still_differ():
    got = {seniority_priority(1_800_000_000.0, random.Random(k)) for k in range(50)}
    assert len(got) == 50


def test_priority_fits_a_kubernetes_int64():
    assert 0 < seniority_priority(0.0) < 2**63 - 1


def test_peering_name_and_lifetime_come_from_the_chart_settings(monkeypatch):
    from tenancy_operator.handlers import config

    monkeypatch.setenv("TENANCY_PEERING_NAME", "ops-peering")
    monkeypatch.setenv("TENANCY_PEERING_LIFETIME", "20")
    cfg = config.load()
    assert (cfg.peering_name, cfg.peering_lifetime) == ("ops-peering", 20)
    monkeypatch.delenv("TENANCY_PEERING_NAME")
    monkeypatch.delenv("TENANCY_PEERING_LIFETIME")
    assert (config.load().peering_name, config.load().peering_lifetime) == ("tenancy-operator", 12)


def test_the_early_peering_entry_is_one_kopf_reads_as_a_live_peer():
    """The entry written before kopf starts must parse as kopf's own (a format change fails here)."""
    import datetime

    from kopf._core.engines.peering import Peer
    from tenancy_operator.handlers.settings import peer_entry

    entry = peer_entry(seniority_priority(), 12)
    peer = Peer(identity="pod-a", **entry)
    assert not peer.is_dead and peer.priority == entry["priority"] and peer.as_dict() == entry
    old = peer_entry(1, 12, datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=13))
    assert Peer(identity="pod-a", **old).is_dead


def test_announce_writes_kopfs_entry_and_never_blocks_startup(monkeypatch):
    """The early entry is optional: no POD_ID, standalone, a missing object or an API error each start
    the operator as before (kopf's peering decides); otherwise one patch under kopf's identity."""
    import asyncio
    import logging

    import kopf
    from tenancy_operator.backends import kube
    from tenancy_operator.handlers import settings as s

    sent: list[tuple] = []
    answer: list[BaseException | None] = [None]

    async def merge_patch(kind, name, namespace, patch, *args, **kwargs):
        if answer[0] is not None:
            raise answer[0]
        sent.append((kind, name, patch))
        return {}

    monkeypatch.setattr(kube, "merge_patch", merge_patch)
    opts = kopf.OperatorSettings()
    opts.peering.standalone, opts.peering.name, opts.peering.priority = False, "tenancy-operator", 7
    log = logging.getLogger("test")
    run = lambda: asyncio.run(s.announce(opts, log, settle=0))  # noqa: E731
    monkeypatch.delenv("POD_ID", raising=False)
    assert run() is False and sent == []
    monkeypatch.setenv("POD_ID", "pod-a")
    assert run() is True
    assert sent[0][:2] == ("ClusterKopfPeering", "tenancy-operator") and sent[0][2]["status"]["pod-a"]["priority"] == 7
    for error in (kube.NotFound(404, "NotFound", "no peering"), kube.KubeError(503, "ServiceUnavailable", "x"),
                  kube.KubeError(0, "Unreachable", "y")):
        answer[0] = error
        assert run() is False
    answer[0] = None
    opts.peering.standalone = True
    assert run() is False and len(sent) == 1
