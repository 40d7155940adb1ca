"""Word lists: the vocabulary that makes a value an enum, and the Latin words pseudonyms use.

Both come from faker (its en_US lorem list of common English words, minus the en_US first
and last names; its Latin lorem list), so neither is a hand-kept dictionary. A pseudonym
made of Latin lorem words is recognisable as one: `scan` knows the same list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_LETTERS = re.compile(r"[a-z]+")
# camelCase and PascalCase boundaries, and runs of capitals before a capitalised word (HTTPServer)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-.:/ ]+")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """faker's common English words (its lorem list and parts of speech), without the words
    that are also first or last names (`mark`, `brown`, `grace`): a name must never pass
    for an enum value."""
    from faker.providers.lorem.en_US import Provider as Lorem
    from faker.providers.person.en_US import Provider as Person

    names = {str(n).lower() for n in (*Person.first_names, *Person.last_names)}
    words = {str(w).lower() for w in Lorem.word_list}
    for part_of_speech in Lorem.parts_of_speech.values():
        words.update(str(w).lower() for w in part_of_speech)
    return frozenset(w for w in words if w.isalpha() and w not in names)


@lru_cache(maxsize=1)
def lorem_words() -> tuple[str, ...]:
    """faker's Latin lorem words (lower case, letters only), the material of pseudonyms."""
    from faker.providers.lorem.la import Provider as Latin

    return tuple(sorted({str(w).lower() for w in Latin.word_list if str(w).isalpha()}))


@lru_cache(maxsize=1)
def lorem_set() -> frozenset[str]:
    return frozenset(lorem_words())


@lru_cache(maxsize=1)
def lorem_by_length() -> dict[int, tuple[str, ...]]:
    """Latin words by length; lengths with none borrow the nearest shorter ones."""
    words = lorem_words()
    longest = max(len(w) for w in words)
    table: dict[int, tuple[str, ...]] = {}
    for length in range(1, longest + 1):
        exact = tuple(w for w in words if len(w) == length)
        table[length] = exact or table.get(length - 1, ())
    return table


_SUFFIXES = ("ing", "ed", "es", "s", "d", "er", "ion", "ity", "ness", "ment", "ly", "al")
_PREFIXES = ("un", "in", "dis", "re", "pre", "non", "sub", "de")


def stems(word: str) -> Iterable[str]:
    """The word, and what it may be an inflection of (`completed` → `complete`, `running` →
    `run`, `inactive` → `active`): faker's list has base forms only."""
    yield word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            yield base
            yield base + "e"
            if len(base) >= 2 and base[-1] == base[-2]:  # running → runn → run
                yield base[:-1]
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 4:
            yield from stems(word[len(prefix) :])


class Vocabulary:
    """English words plus a policy's `keep.words`: what an enum value may be made of."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = frozenset(w.lower() for w in extra)
        self._english = english_words()

    def knows(self, word: str) -> bool:
        lowered = word.lower()
        if lowered in self.extra:
            return True
        return any(stem in self._english or stem in self.extra for stem in stems(lowered))

    def is_enum(self, value: str) -> bool:
        """A code-like token made only of known words (`bearer`, `in_progress`,
        `CLIENT_CREATED`, `dataFreshness`, `v2`); free text and names are not."""
        if len(value) > 48 or not value[:1].isalpha():
            return False
        for part in _SEPARATORS.split(_CAMEL.sub("_", value)):
            if not part:
                continue
            if part.isdigit() and len(part) <= 3:
                continue
            if part.lower() in self.extra:
                continue
            if not part.isascii() or not part.isalnum():
                return False
            letters = part.rstrip("0123456789")
            if not letters.isalpha():
                return False
            if len(part) - len(letters) > 2:  # `user2024` is a name, `v2`, `http2` words
                return False
            if letters.isupper() and len(letters) <= 3:  # codes: USD, EN, GMT, OK
                continue
            if len(letters) <= 3 and letters.islower():  # en, de, ok, ops, crm
                continue
            if not self.knows(letters):
                return False
        return True


def is_lorem_text(value: str) -> bool:
    """Every run of letters in `value` is made of Latin lorem words: the shape of a text
    pseudonym (a long run is several words back to back)."""
    runs = _LETTERS.findall(value.lower())
    return bool(runs) and all(_lorem_run(r) for r in runs)


@lru_cache(maxsize=65536)
def _lorem_run(run: str) -> bool:
    words = lorem_set()
    if run in words:
        return True
    longest = max(map(len, words))
    ends = {0}  # positions where a split into whole words can end
    for end in range(1, len(run) + 1):
        if any(
            start in ends and run[start:end] in words for start in range(max(0, end - longest), end)
        ):
            ends.add(end)
    return len(run) in ends
