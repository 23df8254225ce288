import pytest
from tenancy_operator.backends.circuit import Breaker, CircuitOpen


def test_opens_after_threshold_and_backs_off():
    b = Breaker("pg-main", threshold=2, base_cooldown=2, max_cooldown=30)
    b.failure("down", now=0)
    b.check(now=0)  # one failure: still closed
    b.failure("down", now=0)
    with pytest.raises(CircuitOpen, match="pg-main"):
        b.check(now=1)
    b.check(now=2.5)
    b.failure("down", now=3)
    with pytest.raises(CircuitOpen):
        b.check(now=6)  # cooldown doubled to 4 s
    b.check(now=7.5)


def test_success_closes():
    b = Breaker("x", threshold=1)
    b.failure("down", now=0)
    b.success()
    b.check(now=0)
    assert b.failures == 0


def test_cooldown_is_capped():
    b = Breaker("x", threshold=1, base_cooldown=2, max_cooldown=30)
    for _ in range(20):
        b.failure("down", now=0)
    with pytest.raises(CircuitOpen):
        b.check(now=29)
    b.check(now=31)
