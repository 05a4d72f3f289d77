"""Header lists as ASGI carries them, read and merged without regard to the names' case.

ASGI asks servers and apps for lower-case names, but apps do not all comply (Django sends
`Set-Cookie`, `Cache-Control`, `X-Frame-Options`), so every place that reads or merges headers
goes through these helpers and never compares a raw name.
"""

from __future__ import annotations

from collections.abc import Iterable

Headers = Iterable[tuple[bytes, bytes]]


def get_header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of header `name` (given in lower case), whatever case the list uses."""
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return None


def joined_header(headers: Headers, name: bytes) -> bytes | None:
    """Every line of header `name` (lower case) joined by `, `, as RFC 9110 combines them; or
    None. For list-valued headers (`Vary`, `Cache-Control`) a second line counts as much as the
    first: a `private` on it must not be missed."""
    values = [bytes(value) for key, value in headers if key.lower() == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


def header_names(headers: Headers) -> set[bytes]:
    """The lower-cased names present in `headers`."""
    return {key.lower() for key, _ in headers}


def without(headers: Headers, names: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
    """`headers` minus every header whose lower-cased name is in `names`."""
    drop = frozenset(names)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def media_type(headers: Headers) -> bytes:
    """The lower-cased media type of `Content-Type` (no parameters), or b""."""
    value = get_header(headers, b"content-type")
    return value.split(b";", 1)[0].strip().lower() if value is not None else b""


def cache_directives(value: bytes | None) -> set[bytes]:
    """The directive names of a Cache-Control value, lower-cased (`private="x"` -> `private`)."""
    if not value:
        return set()
    out = set()
    for part in value.split(b","):
        name = part.split(b"=", 1)[0].strip().lower()
        if name:
            out.add(name)
    return out
