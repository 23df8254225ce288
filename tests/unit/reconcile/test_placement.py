import pytest
from tenancy_operator.reconcile.placement import Candidate, NoBackend, choose


def test_most_free_capacity_wins_ties_by_name():
    cands = [Candidate("pg-b", "postgres", True, 10, 2), Candidate("pg-a", "postgres", True, 9, 1),
             Candidate("pg-c", "postgres", True, 100, 99)]
    assert choose("postgres", cands) == "pg-a"  # 8 free each for a and b: name order


@pytest.mark.parametrize(
    "cands,message",
    [
        ([], "no Backend of type postgres exists"),
        ([Candidate("pg", "postgres", False, 10, 0)], "pg (not ready, 10 free)"),
        ([Candidate("pg", "postgres", True, 2, 2)], "pg (ready, 0 free)"),
        ([Candidate("pg", "postgres", True, 5, 0, paused=True)], "paused"),
        ([Candidate("r", "redis", True, 5, 0)], "no Backend of type postgres"),
    ],
    ids=["none", "not-ready", "full", "paused", "other-type"],
)
def test_no_fit_says_why(cands, message):
    with pytest.raises(NoBackend, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose("postgres", cands)


def test_greedy_sequence_matches_the_e2e_expectation():
    placed = {"a": 0, "b": 0}
    order = []
    for _ in range(10):
        name = choose("postgres", [Candidate("a", "postgres", True, 8, placed["a"]),
                                   Candidate("b", "postgres", True, 5, placed["b"])])
        placed[name] += 1
        order.append(name)
    assert order == list("aaaababab" + "a")
