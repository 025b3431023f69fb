"""The M/M/c queue in closed form (Erlang C), used to validate the digital twin against theory.
No Django import (a library module)."""

from __future__ import annotations

import math


def erlang_c(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Probability that an arrival waits, P(W > 0), for an M/M/c queue (stable: λ < cμ)."""
    if servers < 1 or arrival_rate <= 0 or service_rate <= 0:
        raise ValueError("servers ≥ 1 and positive rates are needed.")
    a = arrival_rate / service_rate
    rho = a / servers
    if rho >= 1:
        raise ValueError("unstable queue: arrival rate must be below servers × service rate.")
    # sum_{k<c} a^k/k! computed iteratively for numerical stability
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= a / k
        total += term
    last = term * a / servers  # a^c / c!
    top = last / (1 - rho)
    return top / (total + top)


def mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in queue Wq = C(c, a) / (cμ − λ)."""
    return erlang_c(servers, arrival_rate, service_rate) / (servers * service_rate - arrival_rate)


def mean_queue_length(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Lq = λ Wq (Little's law)."""
    return arrival_rate * mean_wait(servers, arrival_rate, service_rate)


def _check() -> None:  # pragma: no cover - sanity of the closed form: M/M/1 gives ρ/(μ − λ)
    assert math.isclose(mean_wait(1, 0.5, 1.0), 1.0)
