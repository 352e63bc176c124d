"""How sure a flaky verdict is: a Beta-Binomial estimate of a test's failure probability.

Each executed run of the window (outages left out) is one Bernoulli trial, weighted by its age
in runs: a run HALF_LIFE runs older than the newest counts half, so old evidence fades. With a
Jeffreys prior Beta(1/2, 1/2), the posterior of the failure probability p is
Beta(1/2 + weighted failures, 1/2 + weighted passes). The score is the posterior probability
that p lies strictly between "always passes" and "always fails": EDGE < p < 1 - EDGE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

HALF_LIFE = 30.0  # runs
PRIOR = 0.5  # Jeffreys
EDGE = 0.01  # failing in fewer than 1 % of runs (or passing in fewer) is not flaky


@dataclass(frozen=True, slots=True)
class Estimate:
    """The posterior of one test's failure probability, and the score made of it."""

    failures: float  # weighted
    passes: float  # weighted
    score: float

    @property
    def failure_probability(self) -> float:
        """The posterior mean of p."""
        return (PRIOR + self.failures) / (2 * PRIOR + self.failures + self.passes)


def estimate(failed: Sequence[bool], half_life: float = HALF_LIFE) -> Estimate:
    """The estimate of a test's runs, oldest first (True: the run failed)."""
    weights = _weights(len(failed), half_life)
    failures = sum((weight for weight, fail in zip(weights, failed, strict=True) if fail), 0.0)
    passes = sum((weight for weight, fail in zip(weights, failed, strict=True) if not fail), 0.0)
    a, b = PRIOR + failures, PRIOR + passes
    score = _incomplete_beta(a, b, 1 - EDGE) - _incomplete_beta(a, b, EDGE)
    return Estimate(failures, passes, min(max(score, 0.0), 1.0))


@cache
def _weights(runs: int, half_life: float) -> tuple[float, ...]:
    """Each run's weight, oldest first: the newest weighs 1, one half_life older 1/2."""
    return tuple(0.5 ** ((runs - 1 - index) / half_life) for index in range(runs))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b): P(p <= x) for p ~ Beta(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast below the mean; use the symmetry above it.
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _fraction(b, a, 1 - x) / b


def _fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), to 1e-12."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h
