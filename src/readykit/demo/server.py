"""Serve the demo under uvicorn: what `readykit demo` runs."""

from __future__ import annotations

import sys

from readykit.demo.app import create_app


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the demo until interrupted, settings from `READYKIT_*` and `READYKIT_DEMO_*`."""
    import uvicorn

    app = create_app()
    shown = f"[{host}]" if ":" in host else host
    print(
        f"readykit demo: http://{shown}:{port}/  (API docs /docs, health /health/ready)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, access_log=False, lifespan="on")
