"""tls (https targets): certificate validity and expiry, protocol >= TLS 1.2, http→https."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings
from datetime import UTC, datetime

from readykit.check.finding import Evidence, Finding
from readykit.check.probe import ProbeContext

CONNECT_TIMEOUT_S = 5.0
EXPIRY_WARN_DAYS = 14
_MODERN = ("TLSv1.2", "TLSv1.3")


async def handshake(host: str, port: int, context: ssl.SSLContext) -> tuple[str, bytes]:
    """Connect and complete a TLS handshake: the protocol version and the peer's DER cert."""
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host),
        CONNECT_TIMEOUT_S,
    )
    try:
        obj = writer.get_extra_info("ssl_object")
        return str(obj.version()), bytes(obj.getpeercert(binary_form=True) or b"")
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _legacy_only() -> ssl.SSLContext | None:
    """A client context that offers only TLS 1.0/1.1, or None if this OpenSSL cannot."""
    context = _unverified()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return None
    return context


def not_after(der: bytes) -> datetime:
    """When a DER certificate expires."""
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc


async def _redirect(ctx: ProbeContext, host: str) -> None:
    """http://host/ should redirect to https (only checked when https is on port 443)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, 80), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        ctx.add(
            Finding(
                "tls.http-closed",
                "tls",
                "info",
                "nothing listens on http (port 80)",
                Evidence(f"connect {host}:80", None, "refused"),
            )
        )
        return
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.read(4096), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        return
    finally:
        writer.close()
    text = head.decode("latin-1")
    status_line = text.split("\r\n", 1)[0]
    location = next(
        (
            line.split(":", 1)[1].strip()
            for line in text.split("\r\n")
            if line.lower().startswith("location:")
        ),
        "",
    )
    parts = status_line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    ev = Evidence(
        f"GET http://{host}/", status, f"Location: {location}" if location else status_line
    )
    if status in (301, 302, 307, 308) and location.startswith("https://"):
        ctx.add(Finding("tls.redirect", "tls", "info", "http redirects to https", ev))
    else:
        ctx.add(
            Finding(
                "tls.no-redirect",
                "tls",
                "warning",
                "http is served without a redirect to https",
                ev,
                "Answer every http request with a 301/308 to the https URL.",
            )
        )


async def run(ctx: ProbeContext) -> None:
    """Check the certificate, the protocol versions offered, and the http redirect."""
    if not ctx.https:
        ctx.applicable = False
        ctx.add(
            Finding(
                "tls.not-https",
                "tls",
                "info",
                "target is plain http: TLS not checked (terminate TLS in front and check that URL)",
                Evidence(ctx.base_url, None, ""),
            )
        )
        return
    client = ctx.budget.client
    host, port = client.host, client.port
    where = f"TLS handshake with {host}:{port}"
    ctx.budget.used += 1
    try:
        version, der = await handshake(host, port, ctx.ssl_context())
    except ssl.SSLCertVerificationError as exc:
        ctx.add(
            Finding(
                "tls.certificate-invalid",
                "tls",
                "blocker",
                f"certificate not valid: {exc.verify_message or exc.reason}",
                Evidence(where, None, str(exc)[:300]),
                "Serve a certificate from a trusted CA that names this host (e.g. Let's Encrypt).",
            )
        )
        version, der = await handshake(host, port, _unverified())
    days = (not_after(der) - datetime.now(UTC)).total_seconds() / 86400 if der else None
    if days is not None and days < 0:
        ctx.add(
            Finding(
                "tls.certificate-expired",
                "tls",
                "blocker",
                f"certificate expired {-days:.0f} days ago",
                Evidence(where, None, f"notAfter {not_after(der).isoformat()}"),
                "Renew the certificate and automate renewal.",
            )
        )
    elif days is not None and days < EXPIRY_WARN_DAYS:
        ctx.add(
            Finding(
                "tls.certificate-expiring",
                "tls",
                "warning",
                f"certificate expires in {days:.0f} days",
                Evidence(where, None, f"notAfter {not_after(der).isoformat()}"),
                "Renew now and automate renewal (at 30 days left).",
            )
        )
    if version not in _MODERN:
        ctx.add(
            Finding(
                "tls.old-protocol",
                "tls",
                "blocker",
                f"negotiated {version}",
                Evidence(where, None, version),
                "Offer TLS 1.2 and 1.3 only.",
            )
        )
    legacy = _legacy_only()
    if legacy is not None:
        ctx.budget.used += 1
        try:
            old, _ = await handshake(host, port, legacy)
        except (OSError, ssl.SSLError, TimeoutError):
            old = ""
        if old and old not in _MODERN:
            ctx.add(
                Finding(
                    "tls.legacy-accepted",
                    "tls",
                    "blocker",
                    f"the server accepts {old}",
                    Evidence(f"{where} offering only TLS 1.0/1.1", None, old),
                    "Set the minimum protocol version to TLS 1.2.",
                )
            )
    if port == 443:
        ctx.budget.used += 1
        await _redirect(ctx, host)
    if not any(f.severity != "info" for f in ctx.findings):
        ctx.add(
            Finding(
                "tls.ok",
                "tls",
                "info",
                f"{version}, certificate valid for {days:.0f} more days" if days else version,
                Evidence(where, None, version),
            )
        )
