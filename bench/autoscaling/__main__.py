"""`python -m bench.autoscaling`: the autoscaling bench entry point (see run.py)."""

from .run import main

raise SystemExit(main())
