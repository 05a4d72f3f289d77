"""Serve the demo under uvicorn: what `readykit demo` runs."""

from __future__ import annotations

import os
import sys

from readykit.demo.app import create_app


def banner(host: str, port: int, *, token_set: bool) -> str:
    """The demo's first lines: where it is, where the dashboard is and how to get in."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    access = (
        "log in with your READYKIT_OPS_TOKEN"
        if token_set
        else "open it from this machine; set READYKIT_OPS_TOKEN to log in from elsewhere"
    )
    return (
        f"readykit demo dashboard: {base}/ops  ({access})\n"
        f"readykit demo: {base}/  (API docs /docs, health /health/ready; user demo, password demo)"
    )


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the demo until interrupted, settings from `READYKIT_*` and `READYKIT_DEMO_*`."""
    import uvicorn

    app = create_app()
    if host in ("127.0.0.1", "localhost"):
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        # on loopback the demo answers only to loopback names: a made-up Host is refused
        app = TrustedHostMiddleware(app, allowed_hosts=["127.0.0.1", "localhost"])
    print(banner(host, port, token_set=bool(os.environ.get("READYKIT_OPS_TOKEN"))),
          file=sys.stderr, flush=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, access_log=False, lifespan="on")
