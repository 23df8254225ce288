"""The committed CRDs are exactly what the models generate: `make crds` was run after every change."""

from pathlib import Path

import pytest
from tenancy_operator.api import crd

REPO = Path(__file__).resolve().parents[3]
TARGETS = [REPO / "crds", REPO / "charts" / "tenancy-operator" / "crds"]


@pytest.mark.parametrize("directory", [t for t in TARGETS if t.exists()], ids=lambda p: str(p.relative_to(REPO)))
def test_committed_crds_match_the_models(directory):
    expected = crd.render()
    committed = {p.name: p.read_text() for p in directory.glob("*.tenancy.dev.yaml")}
    assert sorted(committed) == sorted(expected), "CRD files differ in name; run `make crds`"
    for name, text in expected.items():
        assert committed[name] == text, f"{directory.name}/{name} is stale; run `make crds`"
