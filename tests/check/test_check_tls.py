"""tls: certificate validity and expiry, protocol version; not applicable to http targets."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit.check.discovery import Target
from readykit.check.probe import ProbeOptions
from readykit.check.probes import tls


def certificate(tmp_path: Path, days: int) -> tuple[str, str]:
    """A self-signed CA-capable certificate for 127.0.0.1 valid `days` more days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def app() -> Starlette:
    async def index(request: Request) -> JSONResponse:
        return JSONResponse({})

    return Starlette(routes=[Route("/", index)])


def https_url(serve_app, tmp_path: Path, days: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    cert, key = certificate(tmp_path, days)
    return serve_app(app(), ssl_certfile=cert, ssl_keyfile=key), cert


def test_http_target_is_not_applicable(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(app()), tls.run, target=Target())
    assert check_ids(ctx) == {"tls.not-https": "info"}
    assert ctx.applicable is False


def test_untrusted_certificate_is_a_blocker(serve_app, run_probe, check_ids, tmp_path) -> None:
    url, _ = https_url(serve_app, tmp_path, days=90)
    ctx = run_probe(url, tls.run, target=Target(), ssl_context=False)
    assert check_ids(ctx) == {"tls.certificate-invalid": "blocker"}


def test_trusted_certificate_passes(serve_app, run_probe, check_ids, tmp_path) -> None:
    url, cert = https_url(serve_app, tmp_path, days=90)
    ctx = run_probe(
        url, tls.run, options=ProbeOptions(ca_file=cert), target=Target(), ssl_context=False
    )
    assert check_ids(ctx) == {"tls.ok": "info"}
    assert ctx.findings[0].title.startswith("TLSv1.3")


def test_certificate_close_to_expiry_is_a_warning(
    serve_app, run_probe, check_ids, tmp_path
) -> None:
    url, cert = https_url(serve_app, tmp_path, days=5)
    ctx = run_probe(
        url, tls.run, options=ProbeOptions(ca_file=cert), target=Target(), ssl_context=False
    )
    assert check_ids(ctx) == {"tls.certificate-expiring": "warning"}
