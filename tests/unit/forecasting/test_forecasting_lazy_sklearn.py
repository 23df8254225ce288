"""scikit-learn (with SciPy, about 70 MB of RSS) loads when a forecasting model is made, not when the operator starts.

Most fleets have no predictive autoscaling rule; bench/scale/RESULTS.md measured the operator at
212 MB RSS with one tenant when they loaded at start, 125 MB since.
"""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import tenancy_operator.handlers, tenancy_operator.forecasting
print(sorted(m for m in ("sklearn", "scipy") if m in sys.modules))
from tenancy_operator.forecasting.models import QuantileGBM
QuantileGBM(tenancy_operator.forecasting.FeatureConfig())
print("sklearn" in sys.modules)
"""


def test_the_operator_starts_without_scikit_learn_and_loads_it_for_a_model():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    imported_at_start, after_model = out.stdout.split("\n")[:2]
    assert imported_at_start == "[]", f"imported when the handlers load: {imported_at_start}"
    assert after_model == "True"
