"""Keyed, shape-preserving pseudonyms: the same value and key always give the same stand-in.

Also owns the capture key: where it comes from (`load_key`); it is never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import string
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from tracereplay.capture.anonymize.detectors import (
    PSEUDO_EMAIL_DOMAIN,
    PSEUDO_IPV4_NET,
    PSEUDO_IPV6_NET,
    PSEUDO_JWT_HEADER,
    PSEUDO_TOKEN_PREFIX,
    find_all,
    looks_like_jwt,
    luhn_ok,
)
from tracereplay.capture.anonymize.words import lorem_by_length
from tracereplay.errors import ConfigError

__all__ = ["PSEUDO_JWT_HEADER", "Pseudonymizer", "load_key"]

_BASE62 = string.digits + string.ascii_letters
# bytes.translate tables: a byte b becomes the character _BASE62[b % 62], or the digit b % 10.
_BYTE_TO_BASE62 = bytes(ord(_BASE62[b % 62]) for b in range(256))
_BYTE_TO_DIGIT = bytes(ord("0") + b % 10 for b in range(256))
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UPPER_HEX = re.compile("[A-F]")
_TOKEN_MIN, _TOKEN_MAX = 16, 128
_JWT_PART_MIN = 16
_REDRAWS = 8
_NON_DIGIT = re.compile(r"\D")
# Runs of letters (any script), of digits, and the rest (kept as it is).
_RUNS = re.compile(r"([^\W\d_]+)|([0-9]+)")
_YEAR = re.compile(r"(?<![0-9])(?:19|20)[0-9]{2}(?![0-9])")
_DATE_PART = re.compile(r"[0-9]+")
PSEUDO_HOST_SUFFIX = ".anon.invalid"
"""Pseudonymized host names end so: RFC 2606 reserves .invalid (as for emails)."""
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*(\d+)\s*$", re.IGNORECASE)


def _name_pool(names: Iterable[object]) -> tuple[str, ...]:
    # faker's en_US name tables, letters only so they fit an email local part
    return tuple(str(n).lower() for n in names if str(n).isascii() and str(n).isalpha())


class Pseudonymizer:
    """Pseudonyms for one capture: HMAC-SHA256 of (kind, value) under the capture key.

    Namespaced by kind only, never by where a value was found, so a value becomes the same
    pseudonym in a path, a header, a query or a body. Results are memoised (bounded LRU).
    """

    def __init__(self, key: bytes, *, cache_size: int = 65536) -> None:
        if not key:
            raise ValueError("the pseudonym key must not be empty")
        self._key = key
        self._cache_size = cache_size
        # Keyed once: a copy of it skips HMAC's key setup (two of its four SHA-256 blocks
        # for a short value), about half of `hmac.digest`'s time per pseudonym.
        self._keyed = hmac.new(key, digestmod="sha256")
        # Per instance, not on the class, so the cache dies with the instance.
        self._memo = lru_cache(maxsize=cache_size)(self._make)
        self._makers: dict[str, Callable[[str], str]] = {
            "email": self._email,
            "jwt": self._jwt,
            "token": self._token,
            "uuid": self._uuid,
            "integer": self._integer,
            "phone": self._phone,
            "card": self._card,
            "ipv4": self._ipv4,
            "ipv6": self._ipv6,
            "name": self._name,
            "words": self._words,
            "hex": self._hex,
            "host": self._host,
            "dob": self._dob,
            "ssn": self._ssn,
            "iban": self._iban,
        }

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"

    # Picklable (a worker process gets its own copy, memo empty): the key and cache size.
    def __getstate__(self) -> dict[str, object]:
        return {"key": self._key, "cache_size": self._cache_size}

    def __setstate__(self, state: dict[str, object]) -> None:
        key, size = state["key"], state["cache_size"]
        assert isinstance(key, bytes) and isinstance(size, int)
        self.__init__(key, cache_size=size)  # type: ignore[misc]

    # --- public API -----------------------------------------------------------------------

    def email(self, value: str) -> str:
        return self._memo("email", value)

    def jwt(self, value: str) -> str:
        return self._memo("jwt", value)

    def token(self, value: str) -> str:
        return self._memo("token", value)

    def secret(self, value: str) -> str:
        """A JWT stays JWT-shaped (clients split it); anything else becomes an opaque token."""
        return self.jwt(value) if looks_like_jwt(value) else self.token(value)

    def uuid(self, value: str) -> str:
        return self._memo("uuid", value)

    def integer(self, value: str) -> str:
        return self._memo("integer", value)

    def phone(self, value: str) -> str:
        return self._memo("phone", value)

    def card(self, value: str) -> str:
        return self._memo("card", value)

    def ipv4(self, value: str) -> str:
        return self._memo("ipv4", value)

    def ipv6(self, value: str) -> str:
        return self._memo("ipv6", value)

    def name(self, value: str) -> str:
        return self._memo("name", value)

    def words(self, value: str) -> str:
        """Free text or an unknown token in the same shape: each run of letters becomes a
        Latin lorem word of the same length and case, each run of digits other digits,
        everything else stays (`Acme-42 Ltd.` → `Quia-17 Sit.`)."""
        return self._memo("words", value)

    def hex(self, value: str) -> str:
        """A hex string of the same length and case (a short digest or handle)."""
        return self._memo("hex", value)

    def host(self, value: str) -> str:
        return self._memo("host", value)

    def date_of_birth(self, value: str) -> str:
        """A date of birth in the same format: another year, on the 1st of January."""
        return self._memo("dob", value)

    def for_kind(self, kind: str, value: str) -> str:
        """The pseudonym for a detector finding of `kind` (see detectors.KINDS)."""
        if kind in ("bearer", "jwt"):
            return self.secret(value)
        if kind in ("key", "private_key"):
            return self.token(value)
        if kind in ("email", "card", "phone", "ipv4", "ipv6", "ssn", "iban"):
            return self._memo(kind, value)
        raise ValueError(f"no pseudonym for detector kind {kind!r}")

    def digest(self, kind: str, value: str, length: int = 16) -> str:
        """Hex of HMAC-SHA256(key, kind + "\\0" + value), cut to `length` (1..64) chars."""
        if not 1 <= length <= 64:
            raise ValueError(f"digest length must be 1..64, not {length}")
        return self._mac(kind, value).hex()[:length]

    # --- keyed randomness -----------------------------------------------------------------

    def _mac(self, kind: str, value: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(f"{kind}\0{value}".encode("utf-8", "surrogatepass"))
        return mac.digest()

    def _bytes(self, kind: str, value: str, size: int, attempt: int = 0) -> bytes:
        """`size` bytes that only the key and (kind, value) decide; SHAKE-256 stretches the MAC."""
        return hashlib.shake_256(self._mac(kind, value) + attempt.to_bytes(4)).digest(size)

    def _make(self, kind: str, value: str) -> str:
        return self._makers[kind](value)

    # --- one maker per shape --------------------------------------------------------------

    def _email(self, value: str) -> str:
        encoded_at = "@" not in value and "%40" in value
        normal = value.replace("%40", "@").strip().lower()
        raw = self._bytes("email", normal, 10)
        first_names, last_names = _name_pools()
        first = first_names[int.from_bytes(raw[:4]) % len(first_names)]
        last = last_names[int.from_bytes(raw[4:8]) % len(last_names)]
        at = "%40" if encoded_at else "@"
        return f"{first}.{last}{raw[8:].hex()}{at}{PSEUDO_EMAIL_DOMAIN}"

    def _jwt(self, value: str) -> str:
        parts = value.split(".")
        payload_len = max(len(parts[1]) if len(parts) > 1 else 0, _JWT_PART_MIN)
        signature_len = max(len(parts[2]) if len(parts) > 2 else 0, _JWT_PART_MIN)
        size = payload_len + signature_len

        # Random base64url can spell a service key's prefix (`ghr_…`, about once in 10^4
        # JWTs): draw again until no detector sees one in it.
        def draw(attempt: int) -> str:
            chars = urlsafe_b64encode(self._bytes("jwt", value, size, attempt)).decode()
            return f"{PSEUDO_JWT_HEADER}.{chars[:payload_len]}.{chars[payload_len:size]}"

        return _first_clean(draw, _no_finding, lambda: draw(_REDRAWS - 1))

    def _token(self, value: str) -> str:
        length = min(max(len(value), _TOKEN_MIN), _TOKEN_MAX) - len(PSEUDO_TOKEN_PREFIX)
        raw = self._bytes("token", value, length)
        return PSEUDO_TOKEN_PREFIX + raw.translate(_BYTE_TO_BASE62).decode("ascii")

    def _uuid(self, value: str) -> str:
        if _CANONICAL_UUID.fullmatch(value):
            normal = value  # what str(uuid.UUID(value)) gives back, without parsing it
        else:
            try:
                normal = str(uuid.UUID(value))  # one identity for every spelling of the UUID
            except ValueError:
                normal = value.lower()
        made = _uuid4_hex(self._bytes("uuid", normal, 16))
        if "-" in value or len(value.strip("{}")) != 32:
            made = f"{made[:8]}-{made[8:12]}-{made[12:16]}-{made[16:20]}-{made[20:]}"
        return made.upper() if _UPPER_HEX.search(value) else made

    def _integer(self, value: str) -> str:
        sign = "-" if value.startswith("-") else ""
        digits = value.lstrip("-+")
        if digits == "0" or not digits:
            return value
        normal = sign + (digits.lstrip("0") or "0")

        # A stand-in for an id must not look like a phone or a card to the leak scanner.
        def draw(attempt: int) -> str:
            raw = self._bytes("integer", normal, len(digits), attempt)
            return sign + str(1 + raw[0] % 9) + raw[1:].translate(_BYTE_TO_DIGIT).decode("ascii")

        def clean(made: str) -> bool:
            return not find_all(made.lstrip("-"), ("card", "phone"))

        # 10…0 fails Luhn at every length and is no phone number.
        return _first_clean(draw, clean, lambda: sign + "1".ljust(len(digits), "0"))

    def _phone(self, value: str) -> str:
        extension = _PHONE_EXTENSION.search(value)
        main = value[: extension.start()] if extension else value
        digits = _NON_DIGIT.sub("", main)
        if len(digits) == 13 and digits.startswith("001"):  # NANP dialled from abroad
            digits = digits[3:]
        elif len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        normal = digits + (f"x{extension.group(1)}" if extension else "")
        raw = self._bytes("phone", normal, 4)
        area = 200 + int.from_bytes(raw[:2]) % 800
        line = raw[2] % 100
        return f"+1-{area}-555-01{line:02d}"

    def _card(self, value: str) -> str:
        digit_count = sum(c.isdigit() for c in value)

        def draw(attempt: int) -> str:
            raw = self._bytes("card", _NON_DIGIT.sub("", value), max(digit_count, 1), attempt)
            made = [str(b % 10) for b in raw[: digit_count - 1]]
            prefix = "".join(made)
            # Any last digit but the one Luhn wants, so a pseudonym is never a card number.
            wrong = [d for d in "0123456789" if not luhn_ok(prefix + d)]
            made.append(wrong[raw[-1] % len(wrong)])
            stream = iter(made)
            return "".join(next(stream) if c.isdigit() else c for c in value)

        def clean(made: str) -> bool:
            return not find_all(made, ("phone", "ssn", "iban"))  # nor a national phone number

        return _first_clean(draw, clean, lambda: self._token(value))

    def _ipv4(self, value: str) -> str:
        raw = self._bytes("ipv4", value.strip(), 4)
        offset = int.from_bytes(raw) % PSEUDO_IPV4_NET.num_addresses
        return str(PSEUDO_IPV4_NET[offset])

    def _ipv6(self, value: str) -> str:
        try:
            normal = str(ipaddress.IPv6Address(value))
        except ValueError:
            normal = value.lower()
        offset = int.from_bytes(self._bytes("ipv6", normal, 12))
        return str(PSEUDO_IPV6_NET[offset])

    def _name(self, value: str) -> str:
        # Title-cased lorem words, as many as the name has (at least two): it still reads
        # as a name to the model, and scan recognises it as a pseudonym.
        normal = " ".join(value.split()).casefold()
        count = min(max(len(normal.split()), 2), 4)
        raw = self._bytes("name", normal, 2 * count)
        pool = lorem_by_length()
        words = [pool[5 + raw[2 * i] % 4][raw[2 * i + 1] % len(pool[5 + raw[2 * i] % 4])]
                 for i in range(count)]  # fmt: skip
        return " ".join(w.capitalize() for w in words)

    def _words(self, value: str) -> str:
        pool = lorem_by_length()
        longest = max(pool)

        def draw(attempt: int) -> str:
            raw = iter(self._bytes("words", value, 2 * len(value) + 8, attempt))

            def swap(match: re.Match[str], raw: Iterator[int] = raw) -> str:
                letters, digits = match.group(1), match.group(2)
                if digits is not None:
                    return "".join(str(next(raw) % 10) for _ in digits)
                made = ""
                while len(made) < len(letters):  # whole Latin words (pools hold 1-14 letters)
                    choices = pool[min(len(letters) - len(made), longest)]
                    made += choices[next(raw) % len(choices)]
                return _same_case(letters, made)

            return _RUNS.sub(swap, value)

        # A stand-in must not look like a phone, a card or an address to the scanner.
        return _first_clean(draw, _no_finding, lambda: self._token(value))

    def _hex(self, value: str) -> str:
        def draw(attempt: int) -> str:
            made = self._bytes("hex", value, (len(value) + 1) // 2, attempt).hex()[: len(value)]
            return made.upper() if value.isupper() else made

        def clean(made: str) -> bool:
            return not find_all(made) and not made.isdigit()

        fallback = "F" if value.isupper() else "f"
        return _first_clean(draw, clean, lambda: fallback * len(value))

    def _host(self, value: str) -> str:
        host = value.strip().lower().rstrip(".")
        return f"h{self.digest('host', host, 10)}{PSEUDO_HOST_SUFFIX}"

    def _dob(self, value: str) -> str:
        raw = self._bytes("dob", value.strip(), 1)
        year = str(1940 + raw[0] % 66)
        dated = _YEAR.sub(year, value, count=1)

        # Every other number (day, month, time) becomes 1 (or 0 where it was 0), same width.
        def one(match: re.Match[str]) -> str:
            text = match.group()
            if text == year or not text.strip("0"):
                return text
            return "1".zfill(len(text))

        return _DATE_PART.sub(one, dated)

    def _ssn(self, value: str) -> str:
        # Area numbers 900-999 are never issued: the stand-in is no one's number.
        raw = self._bytes("ssn", _NON_DIGIT.sub("", value), 9)
        digits = "9" + raw[1:].translate(_BYTE_TO_DIGIT).decode("ascii")
        stream = iter(digits)
        return "".join(next(stream) if c.isdigit() else c for c in value)

    def _iban(self, value: str) -> str:
        # Same country and length, other digits and letters, drawn again until the checksum
        # fails (check digits 00 alone are not enough: 00 ≡ 97 mod 97).
        compact = value.replace(" ", "")

        def draw(attempt: int) -> str:
            raw = self._bytes("iban", compact, len(compact), attempt)
            made = (
                compact[:2]
                + "00"
                + "".join(
                    str(b % 10) if c.isdigit() else chr(65 + b % 26)
                    for b, c in zip(raw[4:], compact[4:], strict=False)
                )
            )
            stream = iter(made)
            return "".join(next(stream) if c != " " else c for c in value)

        return _first_clean(draw, lambda made: not find_all(made, ("iban",)), _not_an_iban)


def _not_an_iban() -> str:
    return "XX00" + "0" * 12  # no country is XX


def _no_finding(made: str) -> bool:
    return not find_all(made)


def _first_clean(
    draw: Callable[[int], str], clean: Callable[[str], bool], fallback: Callable[[], str]
) -> str:
    """The first of `_REDRAWS` draws (keyed by the attempt) that `clean` accepts, else
    `fallback()`. A pseudonym must not look like a finding to the scanner, and some
    shapes stay one whatever is drawn (`1::2` is an IPv6 address for any digits): an
    unbounded redraw hung an anonymizer worker for good on such a value.
    """
    for attempt in range(_REDRAWS):
        made = draw(attempt)
        if clean(made):
            return made
    return fallback()


def _uuid4_hex(raw: bytes) -> str:
    """The 32 hex digits of `uuid.UUID(bytes=raw, version=4)`: version and variant bits set."""
    made = bytearray(raw)
    made[6] = made[6] & 0x0F | 0x40
    made[8] = made[8] & 0x3F | 0x80
    return made.hex()


def _same_case(model: str, word: str) -> str:
    if model.isupper() and len(model) > 1:
        return word.upper()
    if model[:1].isupper():
        return word.capitalize()
    return word


@lru_cache(maxsize=1)
def _name_pools() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """faker's en_US first and last names, loaded on first use (importing faker takes ~0.1 s)."""
    from faker.providers.person.en_US import Provider

    return _name_pool(Provider.first_names), _name_pool(Provider.last_names)


def load_key(env_var: str = "TRACEREPLAY_KEY", key_file: Path | None = None) -> tuple[bytes, str]:
    """The capture key and where it came from: "file", "env" or "random".

    A key file wins (surrounding whitespace stripped, so `echo k > file` and
    `TRACEREPLAY_KEY=k` agree), then the environment variable, else 32 random bytes for this
    process only: the caller should warn that pseudonyms will not match another capture's.
    """
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except FileNotFoundError:
            raise ConfigError(f"{key_file}: key file not found") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(f"{key_file}: key file cannot be read ({reason})") from None
        if not key:
            raise ConfigError(f"{key_file}: key file is empty")
        return key, "file"
    from_env = os.environ.get(env_var, "")
    if from_env:
        return from_env.encode(), "env"
    return secrets.token_bytes(32), "random"
