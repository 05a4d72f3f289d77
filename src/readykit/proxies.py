"""Who the client really is behind trusted proxies, and whether it used https.

Forwarding headers are believed only when the direct peer is a configured trusted proxy; then
the client is the rightmost address in `X-Forwarded-For` (or `Forwarded: for=`) that is not
itself a trusted proxy, as proxies append what they saw. From anyone else the headers change
nothing, so a spoofed `X-Forwarded-For` cannot dodge a rate limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from readykit._types import Scope
from readykit.errors import ConfigurationError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    """Resolves client address and scheme, believing forwarding headers from `proxies` only.

    Args:
        proxies: addresses or CIDRs (`10.0.0.0/8`, `127.0.0.1`); `*` trusts every peer, for a
            service reachable only through its proxies.
    """

    def __init__(self, proxies: Iterable[str], *, setting: str = "trusted_proxies") -> None:
        self._any = False
        self._networks: list[_Network] = []
        for entry in proxies:
            if entry.strip() == "*":
                self._any = True
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"{setting}: {entry!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)"
                ) from exc

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
        return bool(self) and client is not None and self._trusted(client[0])

    def client(self, scope: Scope) -> str | None:
        """The client's address: the peer, or what trusted proxies say they saw."""
        client = scope.get("client")
        peer = client[0] if client else None
        if not self._peer_is_trusted(scope):
            return peer
        hops: list[str] = []
        for key, value in scope["headers"]:
            if key == b"x-forwarded-for":
                hops.extend(h.strip() for h in value.decode("latin-1").split(","))
            elif key == b"forwarded":
                for element in value.decode("latin-1").split(","):
                    for pair in element.split(";"):
                        name, _, val = pair.strip().partition("=")
                        if name.lower() == "for":
                            hops.append(val.strip())
        for hop in reversed(hops):
            ip = _parse_address(hop)
            if ip is None:
                return peer  # garbage in the chain: stop believing it
            if self._any or not self._trusted(str(ip)):
                return str(ip)
        return peer

    def is_https(self, scope: Scope) -> bool:
        """True if the client used https: directly, or per a trusted proxy's header."""
        if scope.get("scheme") in ("https", "wss"):
            return True
        if not self._peer_is_trusted(scope):
            return False
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for key, value in headers:
            if key == b"x-forwarded-proto":
                return bytes(value).split(b",")[0].strip().lower() == b"https"
            if key == b"forwarded":
                for pair in value.decode("latin-1").split(",")[0].split(";"):
                    name, _, val = pair.strip().partition("=")
                    if name.lower() == "proto":
                        return bool(val.strip().strip('"').lower() == "https")
        return False
