"""Did-you-mean: the few names closest to a mistyped one, best first.

One ranking for every suggestion qmpsh makes (commands, arguments, enum values,
transaction actions, event names), so they all err the same way.  The distance is
Damerau-Levenshtein in its optimal-string-alignment form: swapping two neighbours
(``stauts``) costs one edit, as it does for the typist, so ``query-stauts`` finds
``query-status`` rather than ``query-stats``.
"""

from __future__ import annotations

from collections.abc import Iterable

SHOWN = 3  # suggestions offered at most
PREFIX_MIN = 4  # a word this long that starts a name is one edit from it


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and adjacent transpositions turning a into b."""
    if a == b:
        return 0
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cost = 0 if x == y else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        before, previous = previous, current
    return previous[-1]


def _fold(name: str) -> str:
    """Case and ``-``/``_`` do not count: QMP mixes both spellings."""
    return name.lower().replace("_", "-")


def closest(word: str, choices: Iterable[str], limit: int = SHOWN) -> list[str]:
    """Up to ``limit`` choices near ``word``, nearest first.

    Near means at most a third of the word's length in edits (at least one), and no
    farther than the nearest choice: two equally near names are both worth showing,
    a worse one only distracts.  A choice that merely continues the word (``query-cpus``
    → ``query-cpus-fast``) counts as one edit.  Ties go to the choice of the same
    length (``qcow3`` → ``qcow2`` before ``qcow``), then to the same case, then
    alphabetical order, so the answer never depends on the schema's order.
    """
    key = _fold(word)
    allowed = max(1, len(key) // 3)
    scored: list[tuple[int, int, str]] = []
    for choice in dict.fromkeys(choices):
        folded = _fold(choice)
        if len(key) >= PREFIX_MIN and folded.startswith(key):
            distance = 1
        elif abs(len(folded) - len(key)) > allowed:
            continue  # cannot be near: skip the quadratic part
        else:
            distance = edit_distance(key, folded)
        if distance <= allowed:
            scored.append((distance, abs(len(folded) - len(key)), choice))
    if not scored:
        return []
    best = min(distance for distance, _, _ in scored)
    nearest = sorted(s for s in scored if s[0] == best)
    # the same letters in the same case first: STOPP finds the event STOP before `stop`
    nearest.sort(key=lambda s: (s[1], edit_distance(word, s[2])))
    return [choice for *_, choice in nearest[:limit]]


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'a', 'b' or 'c'?)`` with the closest choices, or an empty string."""
    names = [f"'{name}'" for name in closest(word, choices)]
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f" (did you mean {listed}?)"
