"""Names for services created without one, in docker's adjective_surname style (e.g. "eager_hopper").

Docker's generator draws from ~100 adjectives and ~240 surnames of scientists and engineers; a shorter
list does the same job here, and the servicer retries with a numeric suffix when a name is taken.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

ADJECTIVES = (
    "admiring", "agitated", "amazing", "awesome", "bold", "brave", "busy", "clever", "compassionate",
    "confident", "cool", "dazzling", "determined", "eager", "ecstatic", "elegant", "epic", "fervent",
    "focused", "friendly", "gallant", "gifted", "happy", "hopeful", "jolly", "keen", "kind", "laughing",
    "lucid", "magical", "modest", "nice", "nostalgic", "optimistic", "peaceful", "practical", "quirky",
    "relaxed", "serene", "sharp", "stoic", "tender", "trusting", "upbeat", "vibrant", "wizardly", "zealous",
)

SURNAMES = (
    "agnesi", "albattani", "babbage", "bardeen", "bhabha", "booth", "cerf", "curie", "darwin", "dijkstra",
    "einstein", "euclid", "fermat", "feynman", "franklin", "galileo", "germain", "goldwasser", "hamilton",
    "hawking", "hodgkin", "hopper", "hypatia", "jepsen", "kepler", "knuth", "lamport", "lovelace", "mccarthy",
    "meitner", "mirzakhani", "morse", "newton", "noether", "pascal", "perlman", "raman", "ritchie",
    "shannon", "sinoussi", "tesla", "thompson", "torvalds", "turing", "wiles", "wozniak", "yalow",
)


def random_service_name(is_taken: Callable[[str], bool], attempts: int = 10) -> str:
    """A free adjective_surname name; after `attempts` collisions, one with a numeric suffix (docker's way)."""
    for attempt in range(attempts):
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
        if attempt > 0:
            name += str(secrets.randbelow(10))
        if not is_taken(name):
            return name
    while True:
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}{secrets.randbelow(10_000)}"
        if not is_taken(name):
            return name
