"""Serve the demo under uvicorn: what `readykit demo` runs."""

from __future__ import annotations

import secrets
import sys

from pydantic import SecretStr

from readykit.demo.app import create_app, kit_settings


def banner(host: str, port: int, *, token: str | None) -> str:
    """The demo's first lines: where it is, and the dashboard link (with the token it made)."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    if token is None:
        dashboard = f"{base}/ops  (log in with your READYKIT_OPS_TOKEN)"
    else:  # as Jupyter does: a token made for this run, in a link that logs in
        dashboard = (
            f"{base}/ops/login?token={token}  (a token made for this run; "
            "set READYKIT_OPS_TOKEN to choose your own)"
        )
    return (
        f"readykit demo dashboard: {dashboard}\n"
        f"readykit demo: {base}/  (API docs /docs, health /health/ready; user demo, password demo)"
    )


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the demo until interrupted, settings from `READYKIT_*` and `READYKIT_DEMO_*`.

    Without READYKIT_OPS_TOKEN a random token is made, so /ops, /metrics and /health details
    stay closed to everyone but the person who started the demo.
    """
    import uvicorn

    settings = kit_settings(None)
    made = None
    if settings.ops_token is None or not settings.ops_token.get_secret_value():
        made = secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"ops_token": SecretStr(made)})
    app = create_app(settings)
    if host in ("127.0.0.1", "localhost"):
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        # on loopback the demo answers only to loopback names: a made-up Host is refused
        app = TrustedHostMiddleware(app, allowed_hosts=["127.0.0.1", "localhost"])
    print(banner(host, port, token=made), file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, lifespan="on")
