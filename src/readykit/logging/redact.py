"""Redaction: one processor for logs now and for stored records later.

Two kinds of rules, both case-insensitive:
- keys: a value under a sensitive key (`password`, `api_key`, `Set-Cookie`, `dbPassword` ...)
  is replaced whole. A key matches when one of its words (split on `_`, `-`, spaces and
  camelCase) or word runs is a rule: `db_password` and `X-Api-Key` match, `tokens_used` and
  `company` do not.
  Session cookies by their usual names (`JSESSIONID`, `PHPSESSID`, `connect.sid`,
  `myapp_session`) match too; a last word such as `timeout`, `length` or `type` does not
  (`session_timeout`, `token_type`).
- values: secrets recognised by shape anywhere in a string (Bearer/Basic credentials, JWTs, AWS
  access key ids, vendor tokens by prefix, PEM private keys, card numbers that pass Luhn,
  `user:password@` in URLs even when the password holds `/` or `@`, whole Authorization and
  Cookie header values, and pairs under a sensitive key in any form: `DB_PASSWORD=x`,
  `dbPassword: "two words"`, `"api_key": "..."`, URL-encoded `password%3Dx`) are replaced in
  place, the rest of the text kept.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

from readykit._types import Scope

MARK = "[REDACTED]"
MAX_DEPTH = 32

DEFAULT_KEYS = (
    "password",
    "passwd",
    "pwd",
    "pass",
    "pw",
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
    "encryption_key",
    "signing_key",
    "master_key",
    "hmac_key",
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
    "credential",
    "creds",
    "otp",
    "passcode",
    "pincode",
    "pin_code",
    "jwt",
    "bearer",
    "connection_string",
    "conn_str",
    "card_number",
    "cardnumber",
    "pan",
    "cvv",
    "cvc",
    "ssn",
    "dsn",
    "account_key",
    "signature",
    "sig",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
# a key's last word that says the value is about a secret, not the secret (`token_type=bearer`,
# `session_timeout=30`, `password_length=12`)
SAFE_SUFFIXES = frozenset(
    [
        "timeout",
        "ttl",
        "count",
        "length",
        "len",
        "size",
        "expiry",
        "expires",
        "expiration",
        "age",
        "max",
        "min",
        "limit",
        "type",
        "name",
        "used",
        "policy",
        "format",
        "enabled",
        "required",
        "strength",
        "rotation",
        "version",
        # when or how it happened, not what it is (`password_changed_at`, `auth_method=oauth2`)
        "at",
        "sent",
        "changed",
        "method",
        "provider",
        "reset",
        "algorithm",
        "alg",
        # where the secret is, not the secret (`creds_file=/etc/creds.json`, `conn_str_env=`)
        "file",
        "path",
        "env",
        "only",
    ]
)
# values no secret is (`bearer_only: true`, `pin=None`)
_NOT_SECRETS = frozenset(["none", "null", "true", "false"])
# a word that ends like a secret: session cookies by their usual names (JSESSIONID, PHPSESSID,
# connect.sid, myapp_session), and run-together names (PGPASSWORD, csrftoken, mysqlpwd)
_SECRET_WORD = re.compile(
    # `sid`, not a Wi-Fi network's `ssid`/`bssid`
    r"\w*(?:sess(?:ion)?(?:id)?|(?<!s)sid|token"
    # plurals too (`passwords`, `api_keys`); not `tokens`, which counts a model's words
    r"|(?:password|passwd|pwd|secret|apikey|secretkey|accesskey|privatekey)s?)"
)

# the credential is taken whole (atomic): `bearer session_timeout=30` is a pair, not a token
# a credential has a character other than a lower-case letter (random tokens all do; base64 of
# `user:pass` does): `basic information`, `token validation failed` are words, not credentials
# (a `:` inside it is part of it: `Bearer id:secret`)
_BEARER = (
    r"(?i:\b(?:bearer|basic|(?P<token>token))[ \t]+)(?=[a-z]*[A-Z0-9\-._~+/])"
    # nor, after `token`, a capitalised or upper-case word (`token Validation FAILED`); after
    # `Bearer`, whatever follows is the credential
    r"(?(token)(?!(?:[A-Z]?[a-z]+|[A-Z]+)(?![A-Za-z0-9\-._~+/:=])))"
    r"(?>[A-Za-z0-9\-._~+/]{8,}(?::[A-Za-z0-9\-._~+/]+)*=*)(?![\w=])"
)
_JWT = r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
_AWS = r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"
# PEM and OpenSSH keys (`-----BEGIN ... PRIVATE KEY-----`) and PGP's `PRIVATE KEY BLOCK`
_PEM = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)"
)
# vendor tokens known by their prefix: GitHub, GitLab, Slack, Stripe, OpenAI/Anthropic-style,
# Google API keys and OAuth tokens, SendGrid, npm, and the SECRET_KEY a new Django project gets
# (`django-insecure-` + 50 of Django's key characters), which reaches production more than once
_VENDOR = (
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"
    r"|sk-(?:proj-|ant-)?[\w-]{20,}|AIza[\w-]{35}|ya29\.[\w-]{20,}"
    r"|SG\.[\w-]{16,}\.[\w-]{16,}|npm_[A-Za-z0-9]{36}"
    r"|hooks\.slack\.com/(?:services|workflows|triggers)/[\w/-]+"
    r"|django-insecure-[\w!@#$%^&*(\-=+)]{20,})"
)
# user:password@ in a URL; the password may hold `/` or `@`: it ends at the last `@` before a host
# not a port and a path (`localhost:5173/@vite/client`, `host:8000/invite?email=a@b.c`)
_URL_USERINFO = r"(?<=[A-Za-z0-9+.-]://)([^:/@\s]*):(?!\d{1,5}/)\S+@(?=[^@\s/]+(?:[/\s?#]|$))"
# a token as the URL's user name (`https://<token>@github.com/...`): 12+ letters, digits, `_` or
# `-` with a digit and a letter; a name (`git@`, `first.last@`) is not one
_URL_USER_CREDENTIAL = (
    r"(?<=://)(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{12,}(?=@[^@\s/]+(?:[/\s?#:]|$))"
)
# Authorization, Proxy-Authorization, Cookie and Set-Cookie headers: the whole value, quoted
# parameters included (`Token token="..."`, `Digest response="..."`, `sid="..."`); a quote
# anywhere else ends it (the header inside a quoted string: `["authorization: x", "accept"]`)
_HEADER = (
    r"(?i)\b((?:proxy-)?authorization|set-cookie|cookie)([ \t]*:[ \t]*)(?=\S)"
    r"(?:=[ \t]*(?:\"[^\"\r\n]*\"?|'[^'\r\n]*'?)|[^\r\n\"'])+"
)
# key=value, key: value, "key": "value", key%3Dvalue, %22key%22%3A%22value%22; the key is
# checked word by word afterwards (DB_PASSWORD, dbPassword, aws_secret_access_key ...), and only
# then is its value taken, so an innocent pair's value never hides the next pair
_PAIR_KEY = (
    r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![\w.%-]))"
    # a quoted key may hold spaces (`{"API Key": ...}`)
    r"(?P<key>(?<=[\"'])[A-Za-z_][\w .-]{0,63}(?=\\?[\"'])|-{0,2}[A-Za-z_][\w.-]{0,63})"
    r"(?:\\?[\"']|%22)?"
    r"[ \t]*(?:=|:(?!//)|%3[DdAa])[ \t]*"
)
# a header as Python shows it, `('authorization', 'x')` or `(b'cookie', b'x')`: a (key, value)
# tuple, not a list of words (`['password', 'email']` keeps its second word)
_TUPLE_PAIR = (
    r"\([ \t]*b?(['\"])(?P<key>[A-Za-z_][\w.-]{0,63})\1[ \t]*,[ \t]*"
    r"b?(['\"])(?P<value>(?:(?!\3)[^\r\n\\]|\\.)*)\3[ \t]*\)"
)
# a value: quoted (`"a \\" b"` with its escapes, `'it''s'`, `\\"..\\"` inside an escaped JSON
# string, `%22..%22`), a quote never closed (to the next space), or bare, where `;` and `,`
# end it only before a space or the next pair (`sid=x; Path=/`, `a=1;b=2`), not inside it
# (with Python's `b`, `r`, `u` or `f` in front: `b'...'`); a bracketed value (`['a', 'b']`,
# `('user', 'pw')`) is taken whole by `_group_end`
_PAIR_VALUE = (
    r"\\\"[^\"\r\n]*?\\\"|%22.*?%22"
    r"|(?:[bBrRuUfF]{1,2}(?=[\"']))?(?:\"(?:[^\"\\\r\n]|\\.)*\"|'(?:[^'\\\r\n]|\\.|'')*')"
    r"|[bBrRuUfF]{0,2}[\"'][^\s\"']*"
    r"|[^\s&,;\"'})\]>]+(?:[;,](?![\w.-]*[=:])[^\s&,;\"'})\]>]+)*"
)
# card numbers are written in groups that start with four digits (4111 1111 1111 1111,
# 3782 822463 10005) and stand alone: digits inside a longer token (a hex trace id) are not a card
_CARD = (
    r"(?<![\w-])\d{4}(?:[ -]?\d){9,15}(?![\w-])"
    r"|(?<![\w.-])\d{4}(?:\.\d{4}){2,3}(?:\.\d{1,3})?(?![\w-]|\.\d)"  # 4111.1111.1111.1111
)

_BEARER_RE = re.compile(_BEARER)
_JWT_RE = re.compile(_JWT)
_AWS_RE = re.compile(_AWS)
_PEM_RE = re.compile(_PEM)
_VENDOR_RE = re.compile(_VENDOR)
_URL_RE = re.compile(_URL_USERINFO)
_URL_USER_CREDENTIAL_RE = re.compile(_URL_USER_CREDENTIAL)
_HEADER_RE = re.compile(_HEADER)
_PAIR_KEY_RE = re.compile(_PAIR_KEY)
_PAIR_VALUE_RE = re.compile(_PAIR_VALUE)
_CARD_RE = re.compile(_CARD)
_TUPLE_PAIR_RE = re.compile(_TUPLE_PAIR)
# Cheap hints that each pattern could match; most strings (paths, user agents) have none, and the
# full patterns cost microseconds each. A hint may say yes wrongly, never no wrongly.
_AWS_HINT = re.compile(r"A[A-Z]{3}[A-Z0-9]{16}")
_PAIR_HINTS = (
    "pass|pwd|pw|secret|token|key|auth|cookie|sess|sid|csrf|xsrf|cred|card|cvv|cvc|ssn|dsn|pan"
    "|sig|otp|pin|jwt|bearer|conn"
)
_CARD_HINT = re.compile(r"\d{4}")
_NO_DIGITS = str.maketrans("", "", "0123456789")
MIN_CARD_DIGITS = 13


def _has_vendor_hint(text: str) -> bool:
    # plain substring tests: far cheaper than a regex alternation on text that has none
    return (
        "gh" in text
        or "github_pat_" in text
        or "sk-" in text
        or "k_live_" in text
        or "k_test_" in text
        or "xox" in text
        or "AIza" in text
        or "ya29." in text
        or "SG." in text
        or "npm_" in text
        or "glpat-" in text
        or "hooks.slack.com" in text
        or "django-insecure-" in text
    )


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
    digits = re.sub(r"[ .-]", "", match.group(0))
    # payment cards start 2-6 (Mastercard, Amex/Diners/JCB, Visa, Maestro, Discover/UnionPay):
    # a millisecond timestamp or an order id starting 1 passes Luhn one time in ten
    if digits[0] not in "23456":
        return match.group(0)
    return MARK if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _tuple_value(match: re.Match[str], keys: Redactor) -> str:
    """A `(key, value)` tuple with its value redacted when the key is sensitive."""
    whole = match.group(0)
    if not keys.is_sensitive_key(match.group("key")):
        return whole
    start, end = match.start("value") - match.start(), match.end("value") - match.start()
    return whole[:start] + MARK + whole[end:]


_OPENING = re.compile(r"[bBrRuUfF]{0,2}(\\\"|\"|'|%22)")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
MAX_GROUP = 4096  # a bracketed value longer than this is redacted to the end of the text


def _group_end(text: str, start: int) -> int:
    """The end of the bracketed group opening at `start` (`('user', 'pw')`, `["a", ["b"]]`),
    quotes and their escapes honoured; the end of the text if it does not close in time."""
    expected: list[str] = []
    quote = ""
    i, stop = start, min(len(text), start + MAX_GROUP)
    while i < stop:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in _CLOSERS:
            expected.append(_CLOSERS[ch])
        elif expected and ch == expected[-1]:
            expected.pop()
            if not expected:
                return i + 1
        i += 1
    return len(text)


def _redact_pairs(text: str, keys: Redactor) -> str:
    out: list[str] = []
    pos = 0
    for match in _PAIR_KEY_RE.finditer(text):
        if match.start() < pos or not keys.is_sensitive_key(match.group("key")):
            continue
        start = match.end()
        if text.startswith(MARK[:-1], start):  # redacted above
            continue
        if text[start : start + 1] in _CLOSERS:  # a tuple, list or dict: all of it
            out += (text[pos:start], MARK)
            pos = _group_end(text, start)
            continue
        value = _PAIR_VALUE_RE.match(text, start)
        if value is None or value.group(0).strip("\"'").lower() in _NOT_SECRETS:
            continue
        # keep the quotes (and a `b` in front): the text stays well-formed
        opening = _OPENING.match(value.group(0))
        quote = opening.group(1) if opening is not None else ""
        out += (text[pos:start], opening.group(0) if opening else "", MARK, quote)
        pos = value.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def is_plain_token(text: str) -> bool:
    """True for text no rule can match: lower-case ASCII letters and digits with at least one
    letter (a hex request id or trace id). Every rule needs an upper-case letter (JWT, AWS,
    PEM, `AIza`, `SG.`), a separator (`=`, `:`, `%`, `-`, `_`, `.`, a space, `://`) or a
    standalone run of 13+ digits; a run of digits next to a letter is not a card number."""
    return text.isascii() and text.isalnum() and text.islower()


def _redact_shapes(text: str, keys: Redactor | None = None) -> str:
    """Every shape rule on `text` (no fast path); pairs by `keys`' rules (the built-in ones)."""
    keys = keys if keys is not None else _DEFAULT
    original, low = text, text.lower()
    if "PRIVATE KEY" in original:
        text = _PEM_RE.sub(MARK, text)
    if "eyJ" in original:
        text = _JWT_RE.sub(MARK, text)
    if "authorization" in low or "cookie" in low:
        text = _HEADER_RE.sub(lambda m: m.group(1) + m.group(2) + MARK, text)
    if "bearer" in low or "basic" in low or "token" in low:
        text = _BEARER_RE.sub(lambda m: m.group(0).split()[0] + " " + MARK, text)
    if _has_vendor_hint(original):
        text = _VENDOR_RE.sub(MARK, text)
    if _AWS_HINT.search(original):
        text = _AWS_RE.sub(MARK, text)
    if "://" in original and "@" in original:
        text = _URL_RE.sub(lambda m: f"{m.group(1)}:{MARK}@", text)
        text = _URL_USER_CREDENTIAL_RE.sub(MARK, text)
    if ("=" in original or ":" in original or "%3" in original) and keys.pair_hint(low):
        text = _redact_pairs(text, keys)
    if "(" in original and "," in original and keys.pair_hint(low):
        text = _TUPLE_PAIR_RE.sub(lambda m: _tuple_value(m, keys), text)
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
        self._extra: tuple[str, ...] = ()
        self._rules: frozenset[tuple[str, ...]] = frozenset()
        self._key_cache: dict[str, bool] = {}
        # dict keys as shown (a key can be a secret: a token as an id); keys repeat
        self._key_text = Remembered(self.text, max_chars=64)
        self.add_keys(extra_keys)

    def add_keys(self, keys: Iterable[str]) -> bool:
        """Add key rules (the ones it has already are skipped); True if any was new."""
        new = [k for k in keys if _words(k) and k not in self._extra]
        if not new and self._rules:
            return False
        self._extra = (*self._extra, *new)
        rules = {tuple(_words(k)) for k in (*DEFAULT_KEYS, *self._extra) if _words(k)}
        self._rules = frozenset(rules)
        # a text can hold a pair only if it holds a rule's word: the built-in ones, and each
        # extra rule's first word (`national` of `national_id`)
        extra = sorted({re.escape(_words(k)[0]) for k in self._extra})
        self.pair_hint = re.compile("|".join([_PAIR_HINTS, *extra])).search
        self._max_rule = max(len(r) for r in rules)
        self._key_cache.clear()
        self._key_text.known.clear()
        return bool(new)

    def is_sensitive_key(self, key: str) -> bool:
        """True if a value under `key` must never be shown."""
        known = self._key_cache.get(key)
        if known is not None:
            return known
        words = _words(key)
        joined = "".join(words)
        if not words or (len(words) > 1 and words[-1] in SAFE_SUFFIXES):
            found = False
        else:
            found = (
                (joined,) in self._rules
                or any(_SECRET_WORD.fullmatch(w) for w in words)
                or (len(words) > 1 and _SECRET_WORD.fullmatch(joined) is not None)  # api_keys
                or any(
                    tuple(words[i : i + n]) in self._rules
                    for n in range(1, self._max_rule + 1)
                    for i in range(len(words) - n + 1)
                )
            )
        if len(self._key_cache) < 4096:
            self._key_cache[key] = found
        return found

    def _is_pair(self, value: list[Any] | tuple[Any, ...]) -> bool:
        key = value[0]
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        return isinstance(key, str) and len(key) <= 64 and self.is_sensitive_key(key)

    def text(self, text: str) -> str:
        """Replace secrets recognised by their shape inside `text`, `key=value` pairs by this
        redactor's key rules."""
        if len(text) < 5 or is_plain_token(text):  # the shortest secret by shape is `pwd=x`
            return text
        return _redact_shapes(text, self)

    def redact(self, value: Any) -> Any:
        """A copy of `value` with secrets replaced; anything not JSON-like becomes its repr."""
        return self._redact(value, 0, set())

    def _redact(self, value: Any, depth: int, seen: set[int]) -> Any:
        if isinstance(value, str):
            return self.text(value)
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
                    out: dict[Any, Any] = {}
                    for k, v in value.items():
                        if isinstance(k, bytes):  # raw ASGI headers: dict(scope["headers"])
                            k = k.decode("latin-1")
                        if isinstance(k, str):
                            if self.is_sensitive_key(k):
                                out[self._key_text(k)] = MARK
                                continue
                            k = self._key_text(k)
                        out[k] = self._redact(v, depth + 1, seen)
                    return out
                if len(value) == 2 and isinstance(value, list | tuple) and self._is_pair(value):
                    return [self._redact(value[0], depth + 1, seen), MARK]  # a header pair
                return [self._redact(v, depth + 1, seen) for v in value]
            finally:
                seen.discard(id(value))
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "backslashreplace"))
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ must not break logging
            text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
        return self.text(text)

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor: redact every field of the event, the message included."""
        for key, value in event_dict.items():
            if self.is_sensitive_key(key):
                event_dict[key] = MARK
            else:
                event_dict[key] = self._redact(value, 0, set())
        if serving.get() is not None:
            _hide_request_path(event_dict)
        return event_dict


class Remembered:
    """`fn(text)` of texts that repeat from request to request (routes, actions, user agents),
    remembered; `fn` must be a pure function of its text (as `redact_text` is), so a remembered
    answer is the answer. Bounded: at most `size` answers, cleared all at once when full, and
    only for texts of at most `max_chars` (longer ones, which a client can make up at will,
    are computed each time rather than pinned in memory)."""

    def __init__(self, fn: Callable[[str], str], *, size: int = 4096, max_chars: int = 256):
        self.fn = fn
        self.size = size
        self.max_chars = max_chars
        self.known: dict[str, str] = {}
        _REMEMBERED.add(self)  # forgotten all at once when `use_keys` changes the rules

    def __call__(self, text: str) -> str:
        done = self.known.get(text)
        if done is None:
            done = self.fn(text)
            if len(text) <= self.max_chars:
                if len(self.known) >= self.size:
                    self.known.clear()
                self.known[text] = done
        return done


_REMEMBERED: weakref.WeakSet[Remembered] = weakref.WeakSet()
_DEFAULT = Redactor()
redact_text = _DEFAULT.text
"""Replace secrets recognised by their shape inside `text`, by the built-in key rules and the
ones given to `use_keys` (a `Redactor` with keys of its own: its `text`)."""


# a route's parameter: `{token}`, `{token:str}` (Starlette, FastAPI, Litestar), `<token>`,
# `<str:token>` (Django); `path` ones span segments
_ROUTE_PARAM = re.compile(r"\{([A-Za-z_]\w*)(?::(\w+))?\}|<(?:(\w+):)?([A-Za-z_]\w*)>")
_FOLDED = re.compile(r"//+")


def _path_masks(route: str) -> str:
    """Which segments of a path routed by `route` are secrets its parameter names say
    (`/reset/{uidb64}/{token}`): "" none; "*" they cannot be told apart (a `path` parameter);
    else their indexes, comma-separated. A string, as `Remembered` keeps answers."""
    hidden: list[str] = []
    spans = False
    for i, segment in enumerate(route.rstrip("/").split("/")):
        for m in _ROUTE_PARAM.finditer(segment):
            spans = spans or "path" in (m.group(2), m.group(3))
            if _DEFAULT.is_sensitive_key(m.group(1) or m.group(4)):
                hidden.append(str(i))
    if not hidden:
        return ""
    return "*" if spans else ",".join(hidden)


_PATH_MASKS = Remembered(_path_masks)


def redact_path(route: str, path: str) -> str:
    """`path` as a log or record may show it: the segments that the route's parameters name as
    secrets (`/reset/{token}`, Django's `/reset/<uidb64>/<token>/`) replaced by the mark. The
    path is aligned with the route from its end (a `root_path` may come first); when it does not
    align (another segment count, a `path` parameter), the route is shown instead."""
    masks = _PATH_MASKS.known.get(route)
    if masks is None:
        masks = _PATH_MASKS(route)
    if not masks:
        return path
    template = route.rstrip("/").split("/")
    parts = _FOLDED.sub("/", path).rstrip("/").split("/")
    offset = len(parts) - len(template)
    if masks == "*" or offset < 0:
        return route
    for want, got in zip(template[1:], parts[offset + 1 :], strict=True):  # [0]: before `/`
        if "{" not in want and "<" not in want and want != got:
            return route  # a literal segment differs: not aligned
    for i in masks.split(","):
        parts[offset + int(i)] = MARK
    return "/".join(parts) + ("/" if path.endswith("/") and len(parts) > 1 else "")


serving: ContextVar[tuple[Scope, str, Callable[[Scope, str], str]] | None] = ContextVar(
    "readykit_serving", default=None
)
"""The request the kit's layer is serving: its scope, `root_path` as it arrived and how the
kit shows its path (`RouteResolver.shown`), for log lines that quote the request's path
(Django's `Forbidden (CSRF cookie not set.): /reset/MQ/<token>/`)."""


def _hide_request_path(event: MutableMapping[str, Any]) -> None:
    """Where a text field quotes the path of the request being served, show it as
    `redact_path` does: the segments its route names as secrets replaced."""
    current = serving.get()
    assert current is not None
    scope, root_path, shown_of = current
    raw = scope.get("path")
    if not isinstance(raw, str) or raw == "/":
        return
    # as sent too: uvicorn's access line quotes the path percent-encoded
    forms = {raw, quote(raw, safe="/:@!$&'()*+,;=-._~")}
    shown: str | None = None
    for key, value in event.items():
        if isinstance(value, str) and any(form in value for form in forms):
            if shown is None:
                try:
                    shown = shown_of(scope, root_path)
                except Exception:  # a route hook that fails: the hook's failure is logged
                    return
                if shown == raw:
                    return
            for form in forms:
                value = value.replace(form, shown)
            event[key] = value


def use_keys(keys: Iterable[str]) -> None:
    """Make `keys` sensitive for every redaction of the process: `redact_text`, and so the
    access line, health output, job errors, audit actions, privacy failures and check reports,
    not only the logging pipeline and the stored records. The kit calls it with
    `READYKIT_REDACT_KEYS`; keys add up (a second kit's join the first's: redacting more is
    the safe side). Remembered answers are forgotten when the rules change."""
    if _DEFAULT.add_keys(keys):
        for remembered in list(_REMEMBERED):
            remembered.known.clear()
