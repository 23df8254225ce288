"""A new tenant's placement is recorded with its first credentials' staging: one status patch, not two.

The fleet bench (bench/scale/RESULTS.md) counted 6 Tenant patches per creation; the placement and
the staged credentials were two status patches a few milliseconds apart. Both must be in the API
before anything is provisioned (a crash must neither place the tenant twice nor lose the staged
passwords' version), so the test looks at the stored status at the moment the first service runs.
Driven with a fake API (a dict and its merge patches) and fixed placement; the services stop there.
"""

import asyncio
import copy
import logging

import pytest
from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.backends.base import Report, Target
from tenancy_operator.handlers import credentials_part, services_part, sessions_part, tenant_services
from tenancy_operator.reconcile.status import PartResult

NAME = "placed-once"
TARGET = Target(name="pg-main", type="postgres", host="127.0.0.1", port=5432)


class FakeKube:
    KubeError = type("KubeError", (Exception,), {})

    def __init__(self, status):
        self.objects = {("Tenant", NAME): {"metadata": {"name": NAME}, "status": copy.deepcopy(status)}}
        self.status_patches = []

    async def get(self, kind, name, namespace=None):
        return copy.deepcopy(self.objects.get((kind, name)))

    async def merge_patch(self, kind, name, namespace, patch, subresource=None):
        if kind == "Tenant":
            self.status_patches.append(copy.deepcopy(patch["status"]))
            self.objects[(kind, name)]["status"].update(copy.deepcopy(patch["status"]))
        else:
            self.objects[(kind, name)] = copy.deepcopy(patch)

    async def create(self, obj):
        self.objects[(obj["kind"], obj["metadata"]["name"])] = copy.deepcopy(obj)

    async def delete(self, kind, name, namespace=None):
        self.objects.pop((kind, name), None)


@pytest.fixture
def world(monkeypatch):
    def make(status, placement):
        fake, seen = FakeKube(status), []

        async def resolve(spec, placed, backends, counts):
            return services_part.Resolved(targets={"postgres": TARGET},
                                          placement={s: b for s, b in placement.items() if s not in placed})

        async def close_disabled(*args, **kwargs):
            return [], []

        async def run(service, target, want, logger, **kwargs):
            # What the API holds when the first service is provisioned.
            seen.append((copy.deepcopy(fake.objects[("Tenant", NAME)]["status"]), len(fake.status_patches)))
            return PartResult("DatabaseReady", False, "BackendUnavailable", "stop here", outage=True), Report()

        async def converge(*args, **kwargs):
            return sessions_part.Converged()

        for module in (tenant_services, credentials_part):
            monkeypatch.setattr(module, "kube", fake)
        monkeypatch.setattr(services_part, "resolve", resolve)
        monkeypatch.setattr(services_part, "close_disabled", close_disabled)
        monkeypatch.setattr(services_part, "run", run)
        monkeypatch.setattr(sessions_part, "converge", converge)
        return fake, seen

    yield make
    tenant_services._placed_here.clear()


def _services(status):
    spec = TenantSpec.model_validate({"postgres": {"enabled": True}})
    outcome = tenant_services.Outcome()
    asyncio.run(tenant_services.converge(NAME, "uid-1", spec, {"name": NAME}, status, {}, outcome,
                                         logging.getLogger("t"), suspended=False))
    return outcome


def test_a_new_tenant_records_placement_and_staged_credentials_in_one_patch(world):
    fake, seen = world({}, {"postgres": "pg-main"})
    _services({})
    assert len(seen) == 1
    stored, patches = seen[0]
    assert patches == 1  # one status patch before provisioning (two before the merge)
    assert stored["placement"] == {"postgres": "pg-main"}
    assert stored["credentials"]["pending"]["version"] == 1


@pytest.mark.parametrize("prepared", ["nothing staged", "failed"])
def test_a_placement_without_staging_is_still_recorded_before_provisioning(world, monkeypatch, prepared):
    # Credentials in place and nothing due (a service placed anew later), or the credentials part
    # failing: no staging carries the placement, so it goes on its own before the service runs.
    fake, seen = world({}, {"postgres": "pg-main"})

    async def prepare(*args, record=None, **kwargs):
        if prepared == "failed":
            raise RuntimeError("the API server refused a read")
        return credentials_part.unknown({}, args[3])

    monkeypatch.setattr(credentials_part, "prepare", prepare)
    _services({})
    stored, patches = seen[0]
    assert stored["placement"] == {"postgres": "pg-main"} and patches == 1
    assert fake.status_patches == [{"placement": {"postgres": "pg-main"}}]


def test_a_deleted_tenant_no_longer_counts_on_the_backend_it_was_placed_on(world):
    # Placements this process made count until the index shows them; a deleted tenant's must not
    # keep counting (the next tenant would see its backend one tenant fuller for good).
    world({}, {"postgres": "pg-main"})
    _services({})
    assert tenant_services.counts({}) == {("postgres", "pg-main"): 1}
    tenant_services.forget(NAME)
    assert tenant_services.counts({}) == {("postgres", "pg-main"): 0}
