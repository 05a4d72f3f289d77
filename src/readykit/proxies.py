"""Who the client really is behind trusted proxies, and whether it used https.

One forwarding header is read, the one `forwarded_header` names, and only when the direct peer
is a configured trusted proxy; then the client is the rightmost address in it that is not
itself a trusted proxy, as proxies append what they saw. From anyone else the headers change
nothing, so a spoofed `X-Forwarded-For` (or a `Forwarded` the proxy passes through) cannot
dodge a rate limit.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from readykit._types import Scope
from readykit.errors import ConfigurationError
from readykit.section import Section, parsed_by

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _plain_items(text: str) -> list[str]:
    return text.split(",")


def _elements(text: str) -> list[str]:
    """A `Forwarded` header's comma-separated elements; a comma inside a quoted string
    (`for="a, b"`) separates nothing; an empty item stays (garbage, which stops believing the
    chain). A quote left open at the end (a client's, which would swallow the elements the
    proxies appended after it) makes every comma count. One pass, linear in the header's
    length, whatever a client puts in it."""
    if '"' not in text:
        return text.split(",")
    items: list[str] = []
    start, quoted, escaped = 0, False, False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(text[start:at])
            start = at + 1
    if quoted:
        return text.split(",")
    items.append(text[start:])
    return items


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # a dual-stack socket (`--host ::`, gunicorn) names an IPv4 peer `::ffff:127.0.0.1`: it is
    # the IPv4 address, inside an IPv4 network of trusted proxies too
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped if mapped is not None else ip


def forwarded_pairs(elements_text: Iterable[str]) -> list[dict[str, str]]:
    """RFC 7239 `Forwarded` elements (the value split on commas), each as {parameter: value}."""
    elements = []
    for element in elements_text:
        pairs = {}
        for pair in element.split(";"):
            name, sep, val = pair.strip().partition("=")
            if sep:
                pairs[name.strip().lower()] = val.strip().strip('"')
        elements.append(pairs)
    return elements


class TrustedProxies:
    """Resolves client address and scheme, believing one forwarding header from `proxies` only.

    Args:
        proxies: addresses or CIDRs (`10.0.0.0/8`, `127.0.0.1`); `*` trusts every peer, for a
            service reachable only through its proxies (a unix socket's peer, which has no
            address, is trusted only with `*`).
        header: `x-forwarded-for` (with `X-Forwarded-Proto`) or `forwarded` (RFC 7239); the
            other is ignored, so a header the proxy passes through untouched cannot be used by
            the client to choose its own address.
    """

    def __init__(
        self,
        proxies: Iterable[str],
        *,
        header: str = "x-forwarded-for",
        setting: str = "trusted_proxies",
    ) -> None:
        self._any = False
        self._networks: list[_Network] = []
        self._rfc7239 = header == "forwarded"
        for entry in proxies:
            if entry.strip() == "*":
                self._any = True
                continue
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                raise ConfigurationError(
                    f"{setting}: {entry!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)"
                ) from exc
            self._networks.append(network)
            if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_V4_MAPPED):
                # `::ffff:10.0.0.5`, as a dual-stack server logged the proxy: peers are read
                # as their IPv4 address, so the entry is taken as that too
                v4 = int(network.network_address) & 0xFFFFFFFF
                self._networks.append(ipaddress.IPv4Network((v4, network.prefixlen - 96)))

    def __bool__(self) -> bool:
        return self._any or bool(self._networks)

    def _trusted(self, address: str | None) -> bool:
        if address is None:
            return False
        if self._any:
            return True
        ip = _parse_address(address)
        return ip is not None and any(ip in net for net in self._networks)

    def _peer_is_trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        if client is None:  # a unix socket: only a proxy on this host reaches it
            return self._any
        return bool(self) and self._trusted(client[0])

    def _values(self, scope: Scope, name: bytes) -> list[str]:
        """Every comma-separated item of header `name`, over all its lines, in order (a
        `Forwarded` header's elements, quoted strings whole; X-Forwarded-* have no quoting)."""
        split = _elements if name == b"forwarded" else _plain_items
        items: list[str] = []
        for key, value in scope["headers"]:
            if key.lower() == name:
                items.extend(split(bytes(value).decode("latin-1")))
        return items

    def _hops(self, scope: Scope) -> list[tuple[str, str | None]]:
        """(address, proto) per hop as the configured header lists them, nearest last."""
        if self._rfc7239:
            return [
                (e.get("for", ""), e.get("proto"))
                for e in forwarded_pairs(self._values(scope, b"forwarded"))
            ]
        return [(h.strip(), None) for h in self._values(scope, b"x-forwarded-for")]

    def client(self, scope: Scope) -> str | None:
        """The client's address: the peer, or what trusted proxies say they saw.

        Read right to left (the nearest proxy wrote last), skipping trusted proxies, as
        Werkzeug's ProxyFix and Tomcat's RemoteIpValve do; the first untrusted hop is the
        client. Garbage in the chain stops the walk at the last address believed.
        """
        client = scope.get("client")
        peer = client[0] if client else None
        if not self._peer_is_trusted(scope):
            return peer
        believed = peer
        for hop, _ in reversed(self._hops(scope)):
            ip = _parse_address(hop)
            if ip is None:
                return believed  # garbage in the chain: stop believing it
            believed = str(ip)
            if self._any or not self._trusted(believed):
                return believed
        return believed

    def is_https(self, scope: Scope) -> bool:
        """True if the client used https: directly, or per a trusted proxy's header."""
        if scope.get("scheme") in ("https", "wss"):
            return True
        if not self._peer_is_trusted(scope):
            return False
        if self._rfc7239:
            protos = [proto for _, proto in self._hops(scope) if proto]
        else:
            protos = [p.strip() for p in self._values(scope, b"x-forwarded-proto")]
        # the nearest proxy's word: the last value, as it appends to what came before
        return bool(protos) and protos[-1].lower() == "https"


class ProxyConfig(Section):
    """The settings section of the trusted proxies (read by the kit for every feature)."""

    trusted_proxies: Annotated[list[str], AfterValidator(parsed_by(TrustedProxies))] = Field(
        default_factory=list,
        description="Proxy addresses or CIDRs whose forwarding header is believed (client "
        "address for rate limits, https for HSTS).",
    )
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = Field(
        default="x-forwarded-for",
        description="The one header trusted proxies set (X-Forwarded-For with "
        "X-Forwarded-Proto, or RFC 7239 Forwarded); the other is ignored.",
    )


IPV6_GROUP_PREFIX = 64
"""Rate limits count an IPv6 client by its /64: one subscriber or host gets a /64 (RFC 6177),
and counting each of its 2**64 addresses apart let one client rotate past any limit."""


@functools.lru_cache(maxsize=4096)
def address_group(address: str) -> str:
    """The address rate limits count: an IPv6 address's /64 (an IPv4-mapped one as IPv4), an
    IPv4 address or anything unparsable as it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id names no other host
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_GROUP_PREFIX), strict=False))
    return address
