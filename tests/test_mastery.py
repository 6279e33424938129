import pytest

from tutor.domain.mastery import DEFAULT_BKT, update


def test_right_answers_raise_and_wrong_answers_lower_mastery():
    p = DEFAULT_BKT.prior
    assert update(p, True) > p
    assert update(p, False) < update(p, True)


def test_bkt_matches_the_textbook_formula():
    # P(L|correct) = P(L)(1-s) / (P(L)(1-s) + (1-P(L))g), then learning
    p, s, g, t = 0.3, DEFAULT_BKT.slip, DEFAULT_BKT.guess, DEFAULT_BKT.learn
    posterior = p * (1 - s) / (p * (1 - s) + (1 - p) * g)
    assert update(p, True) == pytest.approx(posterior + (1 - posterior) * t)


def test_repeated_success_converges_towards_mastery():
    p = DEFAULT_BKT.prior
    for _ in range(10):
        p = update(p, True)
    assert 0.95 < p < 1
