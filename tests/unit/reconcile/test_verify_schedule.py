"""reconcile/verify_schedule.py: a verify pass runs unless another pass runs or one began less than
0.9 of an interval ago."""

from tenancy_operator.reconcile.verify_schedule import VerifySchedule


def test_a_tenant_never_passed_is_due():
    assert VerifySchedule(30).due("a", now=5.0, running=False)


def test_not_due_while_another_pass_of_the_tenant_runs():
    schedule = VerifySchedule(30)
    assert not schedule.due("a", now=1000.0, running=True)
    schedule.finished("a", started=0.0)
    assert not schedule.due("a", now=1000.0, running=True)


def test_not_due_until_0_9_of_an_interval_after_the_last_pass_began():
    schedule = VerifySchedule(30)
    schedule.finished("a", started=100.0)
    assert not schedule.due("a", now=126.9, running=False)
    assert schedule.due("a", now=127.0, running=False)
    assert schedule.due("b", now=126.9, running=False)  # per tenant


def test_a_creation_that_began_late_is_verified_at_the_timers_second_firing():
    # The timer's clock starts when the operator sees the Tenant (t=0, first firing at 30); the creation
    # pass waited for a slot and began at 10: the first firing is skipped, the second (30 s after the
    # first ended) runs: the tenant is read again within 1.9 intervals of the creation's reads.
    schedule = VerifySchedule(30)
    schedule.finished("a", started=10.0)
    assert not schedule.due("a", now=30.0, running=False)
    assert schedule.due("a", now=60.0, running=False)
    assert 60.0 - 10.0 <= 1.9 * 30


def test_an_older_pass_finishing_late_does_not_move_the_time_back():
    schedule = VerifySchedule(30)
    schedule.finished("a", started=100.0)
    schedule.finished("a", started=90.0)  # began earlier, ended after (its lock was held by another)
    assert not schedule.due("a", now=110.0, running=False)


def test_a_verify_on_its_own_interval_is_due_every_time():
    schedule = VerifySchedule(3)
    for tick in range(1, 20):
        now = tick * 3.0
        assert schedule.due("a", now=now, running=False)
        schedule.finished("a", started=now)


def test_forget_makes_a_new_tenant_of_the_name_due():
    schedule = VerifySchedule(30)
    schedule.finished("a", started=100.0)
    schedule.forget("a")
    assert schedule.due("a", now=101.0, running=False)


def test_a_busy_process_defers_a_tenants_firings_at_most_twice_in_a_row():
    schedule = VerifySchedule(30)
    assert [schedule.defer("a") for _ in range(4)] == [True, True, False, False]
    assert schedule.defer("b")  # per tenant
    schedule.finished("a", started=10.0)
    assert schedule.defer("a"), "a finished pass resets the count"
    schedule.forget("a")
    assert [schedule.defer("a") for _ in range(3)] == [True, True, False]
