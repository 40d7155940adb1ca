"""Identifiers of people and of numbered things in one token: what must not pass for a word.

A path segment is kept when it is a route word (`accounts`, `test-connection`, `oauth2`,
`jwks`), and an enum value in a body when it is made of known words; a username is
neither, though it may look like both (`user1` is a word and a digit, `jessica.miller`
two words). `looks_identifier` tells them apart by shape alone, from the token itself:

- a person's name: a part that is a first or last name (faker's tables for several
  locales) and no common English word (`jessica`; not `mark`, `price`, `page`: the
  dictionary's lower-case entries, web2, decide), two name parts (`emma.miller`), an
  initial and a last name (`jmiller`, `j.miller`) or first and last name run together
  (`jessicamiller`);
- a word with a number: 4+ letters (3+ for a name) and digits (`user1`, `item_42`,
  `jessica82`), unless the letters are a `[keep] words` entry (`oauth2`, `http2`); up to
  three letters are a code (`v2`, `s3`, `ipv6`, `sha256`);
- a handle: 8+ characters with a part mixing letters and 2+ digits (`jsmith42`,
  `ab12cd34`).

What it cannot see: a lone first name that is also an English word (`grace`, `mark`) or a
handle of ordinary words (`bluesky`). `scan` applies the same rule to what a trace stores.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from .shapes import UUID
from .words import is_lorem_text, stems

# Locales whose name tables are ASCII-spelled enough to match usernames.
NAME_LOCALES = (
    "en_US", "en_GB", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL",
    "ru_RU", "ja_JP", "zh_CN",
)  # fmt: skip
_SHAPE = re.compile(r"[A-Za-z0-9._\-+~']{2,64}")
# Runs of a camelCase or PascalCase token: `JessicaMiller` → Jessica, Miller.
_RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_NUMBERED = re.compile(r"([A-Za-z]{3,})_?([0-9]{1,6})")
# A word and a bit width is a type or an encoding (`base64`, `float32`, `crc32`, `aes256`).
_BIT_WIDTHS = frozenset(("8", "16", "32", "64", "128", "256", "384", "512", "1024", "2048"))
_HANDLE_PART = re.compile(r"[-_.~]")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
# A principal or URN: a kind word, a colon, a value (`account:user1`, `system:admin`).
_KIND_VALUE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*:[^:\s]")
_NAME_SPLIT = re.compile(r"[\s\-']+")
_CODE_LETTERS = 3
_HANDLE_MIN = 8
_NAME_MIN = 3


@lru_cache(maxsize=1)
def person_names() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names): faker's tables for NAME_LOCALES (their romanized tables
    where they have them), spelled in ASCII as faker spells them in usernames, lower case,
    at least three letters; a name of several words (`van der Berg`) gives each word."""
    import importlib

    from faker.decode import unidecode

    first: set[str] = set()
    last: set[str] = set()
    for locale in NAME_LOCALES:
        person = importlib.import_module(f"faker.providers.person.{locale}").Provider
        try:
            internet = importlib.import_module(f"faker.providers.internet.{locale}").Provider
        except ImportError:
            internet = None
        replacements = getattr(internet, "replacements", ())
        for kind, into in (("first", first), ("last", last)):
            names = getattr(person, f"{kind}_romanized_names", ()) or getattr(
                person, f"{kind}_names", ()
            )
            for name in map(str, names):
                spelled = name
                for search, replace in replacements:
                    spelled = spelled.replace(search, replace)
                into.update(
                    w
                    for w in _NAME_SPLIT.split(unidecode(spelled).lower())
                    if w.isascii() and w.isalpha() and len(w) >= _NAME_MIN
                )
    return frozenset(first), frozenset(last)


@lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """English words: the lower-case entries of Webster's 2nd (english-words' web2 list;
    its capitalised entries are proper nouns and left out)."""
    from english_words import get_english_words_set

    return frozenset(w for w in get_english_words_set(["web2"]) if w.islower())


@lru_cache(maxsize=65536)
def is_common_word(word: str) -> bool:
    """A dictionary word, or an inflection of one (`hunter`, `banks`)."""
    words = dictionary()
    return any(stem in words for stem in stems(word.lower()))


@lru_cache(maxsize=65536)
def _is_name(run: str) -> bool:
    first, last = person_names()
    return run in first or run in last


def _name_only(run: str) -> bool:
    """A first or last name of 4+ letters that is no English word (`jessica`, `nguyen`; not
    `price`, nor `max` or `jan`, which are abbreviations as often)."""
    return len(run) > _NAME_MIN and _is_name(run) and not is_common_word(run)


def _in_dictionary(run: str) -> bool:
    """The word itself or its plural is in the dictionary (no other stemming: `ireed` is
    not `ire` + `ed`)."""
    words = dictionary()
    return run in words or (run.endswith("s") and run[:-1] in words)


def _initial_and_last_name(run: str) -> bool:
    """`jmiller`: one letter, then a last name of 4+ letters; not a word (`chill`, `state`)."""
    _, last = person_names()
    return len(run) > _NAME_MIN + 1 and run[1:] in last and not _in_dictionary(run)


def _two_names(run: str) -> bool:
    """`jessicamiller`, `millerjessica`: first and last name run together, either way
    round; not a word (`hallmark`)."""
    first, last = person_names()
    if len(run) < 2 * _NAME_MIN or _in_dictionary(run):
        return False
    return any(
        (run[:cut] in first and run[cut:] in last) or (run[:cut] in last and run[cut:] in first)
        for cut in range(_NAME_MIN, len(run) - _NAME_MIN + 1)
    )


def _handle_part(part: str) -> bool:
    """Letters mixed with 2+ digits (`jsmith42`, `ab12cd34`), not a type (`x64`, `int64`)."""
    if sum(c.isdigit() for c in part) < 2 or not any(c.isalpha() for c in part):
        return False
    return (
        part.rstrip("0123456789") == part
        or part.lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") not in _BIT_WIDTHS
    )


def _numbered(word: str, digits: str, keep_words: Collection[str]) -> bool:
    """`user1`, `item_42`, `amy12`: a word of 4+ letters (or a first name) and a number;
    not a `[keep] words` entry with a version (`oauth2`), nor a type (`base64`)."""
    if word in keep_words:
        return False
    if word in person_names()[0]:
        return True
    return len(word) > _CODE_LETTERS and digits not in _BIT_WIDTHS


def colon_parts(token: str) -> list[str]:
    """`account:jessica.miller`, `urn:li:person:x` → its parts; any other token (a time, a
    URL, an IPv6 address) → itself."""
    if _KIND_VALUE.match(token) is None or "://" in token:
        return [token]
    return token.split(":")


def looks_identifier(token: str, keep_words: Collection[str] = ()) -> bool:
    """A lone token (no spaces, slashes or colons) naming a person or a numbered thing."""
    token = token.removeprefix("@")  # a handle: `@jessica`
    if (
        not _SHAPE.fullmatch(token)
        or token.lower() in keep_words
        or _HEX.fullmatch(token)  # digests and ids have their own rules
        or UUID.fullmatch(token)
        or is_lorem_text(token)  # a pseudonym is made of Latin lorem words
    ):
        return False
    letters = [r.lower() for r in _RUNS.findall(token) if r.isalpha()]
    numbered = _NUMBERED.fullmatch(token)
    return bool(letters) and (
        (numbered is not None and _numbered(numbered[1].lower(), numbered[2], keep_words))
        or (len(token) >= _HANDLE_MIN and any(map(_handle_part, _HANDLE_PART.split(token))))
        or any(_name_only(r) or _initial_and_last_name(r) or _two_names(r) for r in letters)
        or _names_and_initials(letters)
    )


def _names_and_initials(letters: list[str]) -> bool:
    """Two or more parts, each a name or an initial: `emma.miller`, `j.miller`, `Emma_M`."""
    return (
        len(letters) >= 2
        and any(len(r) >= _NAME_MIN and _is_name(r) for r in letters)
        and all(len(r) == 1 or _is_name(r) for r in letters)
    )
