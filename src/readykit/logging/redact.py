"""Redaction: one processor for logs now and for stored records later.

Two kinds of rules, both case-insensitive:
- keys: a value under a sensitive key (`password`, `api_key`, `Set-Cookie`, `dbPassword` ...)
  is replaced whole. A key matches when one of its words (split on `_`, `-`, spaces and
  camelCase) or word runs is a rule: `db_password` and `X-Api-Key` match, `tokens_used` and
  `company` do not.
- values: secrets recognised by shape anywhere in a string (Bearer/Basic credentials, JWTs, AWS
  access key ids, PEM private keys, card numbers that pass Luhn, `user:password@` in URLs, and
  `password=...`-style pairs) are replaced in place, the rest of the text kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any

MARK = "[REDACTED]"
MAX_DEPTH = 32

DEFAULT_KEYS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "authorization",
    "auth",
    "cookie",
    "set_cookie",
    "session",
    "sessionid",
    "session_id",
    "csrf",
    "xsrf",
    "credentials",
    "card_number",
    "cardnumber",
    "pan",
    "cvv",
    "cvc",
    "ssn",
    "dsn",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")

_BEARER = r"(?i:\b(?:bearer|basic|token)\s+)[A-Za-z0-9\-._~+/]{8,}=*"
_JWT = r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
_AWS = r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"
_PEM = r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
_URL_USERINFO = r"(?<=[A-Za-z0-9+.-]://)([^:/@\s]*):[^@/\s]+@"
_PAIR = (
    r"(?i:\b(?:"
    + "|".join(sorted({k.replace("_", "[_-]?") for k in DEFAULT_KEYS}, key=len, reverse=True))
    + r")\b)"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)[^\s&,;\"'})\]>]+"
)
# card numbers are written in groups that start with four digits (4111 1111 1111 1111,
# 3782 822463 10005) and stand alone: digits inside a longer token (a hex trace id) are not a card
_CARD = r"(?<![\w-])\d{4}(?:[ -]?\d){9,15}(?![\w-])"

_BEARER_RE = re.compile(_BEARER)
_JWT_RE = re.compile(_JWT)
_AWS_RE = re.compile(_AWS)
_PEM_RE = re.compile(_PEM)
_URL_RE = re.compile(_URL_USERINFO)
_PAIR_RE = re.compile(_PAIR)
_CARD_RE = re.compile(_CARD)
# Cheap hints that each pattern could match; most strings (paths, user agents) have none, and the
# full patterns cost microseconds each. A hint may say yes wrongly, never no wrongly.
_AWS_HINT = re.compile(r"A[A-Z]{3}[A-Z0-9]{16}")
_PAIR_HINT = re.compile(
    "|".join(sorted({w for k in DEFAULT_KEYS for w in re.split("_", k) if len(w) > 2}))
)
_CARD_HINT = re.compile(r"\d{4}")
_NO_DIGITS = str.maketrans("", "", "0123456789")
MIN_CARD_DIGITS = 13


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return MARK if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def redact_text(text: str) -> str:
    """Replace secrets recognised by their shape inside `text`."""
    if len(text) < 5:  # the shortest secret we know by shape is `pwd=x`
        return text
    original, low = text, text.lower()
    if "PRIVATE KEY" in original:
        text = _PEM_RE.sub(MARK, text)
    if "eyJ" in original:
        text = _JWT_RE.sub(MARK, text)
    if "bearer" in low or "basic" in low or "token" in low:
        text = _BEARER_RE.sub(lambda m: m.group(0).split()[0] + " " + MARK, text)
    if _AWS_HINT.search(original):
        text = _AWS_RE.sub(MARK, text)
    if "://" in original and "@" in original:
        text = _URL_RE.sub(lambda m: f"{m.group(1)}:{MARK}@", text)
    if ("=" in original or ":" in original) and _PAIR_HINT.search(low):
        text = _PAIR_RE.sub(
            lambda m: m.group(0)[: m.start("sep") - m.start()] + m.group("sep") + MARK, text
        )
    if len(original) - len(original.translate(_NO_DIGITS)) >= MIN_CARD_DIGITS and _CARD_HINT.search(
        original
    ):
        text = _CARD_RE.sub(_card, text)
    return text


def _words(key: str) -> list[str]:
    return [w for w in _SEPARATORS.split(_CAMEL.sub("_", key).lower().replace("_", " ")) if w]


class Redactor:
    """Redacts nested data; also a structlog processor (`__call__`).

    Args:
        extra_keys: more key rules, on top of `DEFAULT_KEYS` (e.g. from `Settings.redact_keys`).
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        rules = {tuple(_words(k)) for k in (*DEFAULT_KEYS, *extra_keys) if _words(k)}
        self._rules = frozenset(rules)
        self._max_rule = max(len(r) for r in rules)
        self._key_cache: dict[str, bool] = {}

    def is_sensitive_key(self, key: str) -> bool:
        """True if a value under `key` must never be shown."""
        known = self._key_cache.get(key)
        if known is not None:
            return known
        words = _words(key)
        joined = "".join(words)
        found = (joined,) in self._rules or any(
            tuple(words[i : i + n]) in self._rules
            for n in range(1, self._max_rule + 1)
            for i in range(len(words) - n + 1)
        )
        if len(self._key_cache) < 4096:
            self._key_cache[key] = found
        return found

    def redact(self, value: Any) -> Any:
        """A copy of `value` with secrets replaced; anything not JSON-like becomes its repr."""
        return self._redact(value, 0, set())

    def _redact(self, value: Any, depth: int, seen: set[int]) -> Any:
        if isinstance(value, str):
            return redact_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth >= MAX_DEPTH:
            return "[TOO DEEP]"
        if isinstance(value, dict | list | tuple | set | frozenset):
            if id(value) in seen:
                return "[CYCLE]"
            seen.add(id(value))
            try:
                if isinstance(value, dict):
                    return {
                        k: MARK
                        if isinstance(k, str) and self.is_sensitive_key(k)
                        else self._redact(v, depth + 1, seen)
                        for k, v in value.items()
                    }
                return [self._redact(v, depth + 1, seen) for v in value]
            finally:
                seen.discard(id(value))
        if isinstance(value, bytes):
            return redact_text(value.decode("utf-8", "backslashreplace"))
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ must not break logging
            text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
        return redact_text(text)

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor: redact every field of the event, the message included."""
        for key, value in event_dict.items():
            if self.is_sensitive_key(key):
                event_dict[key] = MARK
            else:
                event_dict[key] = self._redact(value, 0, set())
        return event_dict
