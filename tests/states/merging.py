"""Merging states in a random tree, for the merge-law property tests."""

from __future__ import annotations

import random
from typing import TypeVar

from spark_explore.states.base import State

S = TypeVar("S", bound=State)


def merge_randomly(states: list[S], seed: int) -> S:
    """Merge ``states`` by repeatedly joining two picked at random, until one is left."""
    rnd = random.Random(seed)
    pool = list(states)
    while len(pool) > 1:
        i, j = rnd.sample(range(len(pool)), 2)
        merged = pool[i].merge(pool[j])
        pool = [s for k, s in enumerate(pool) if k not in (i, j)] + [merged]
    return pool[0]
