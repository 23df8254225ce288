"""The README's Helm install on the local platform's node is the command hack/node-demo.sh runs
(`make demo` and e2e/test_node_chart.py install through it), so the e2e test proves the README's path."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _readme_node_block() -> list[str]:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    node = [b for b in blocks if b.startswith("TENANCY_NODE=1 make up")]
    assert len(node) == 1, "the README's install block for the local platform with its node"
    return [line.split("#", 1)[0].strip() for line in node[0].splitlines()]


def test_readme_helm_install_is_the_one_node_demo_runs():
    commands = _readme_node_block()
    helm = [c for c in commands if c.startswith("helm ")]
    assert helm == ["helm upgrade --install tenancy-operator charts/tenancy-operator -n tenancy-system "
                    "-f .platform/node-values.yaml"]
    script = (REPO / "hack" / "node-demo.sh").read_text().replace("\\\n", " ")
    assert re.search(re.escape(helm[0]) + r"\s", script), "node-demo.sh installs with another command than the README"
    assert "kubectl apply -f manifests/namespace.yaml" in commands
    assert 'kubectl apply -f "$REPO/manifests/namespace.yaml"' in script
    # The values file the README names is the one node-demo.sh import writes.
    assert "VALUES=$REPO/.platform/node-values.yaml" in script and "bash hack/node-demo.sh import" in commands
