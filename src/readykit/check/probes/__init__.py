"""The probes, one module each, in the order the runner runs them."""

from __future__ import annotations

from readykit.check.probe import ProbeSpec


def all_probes() -> list[ProbeSpec]:
    """Every probe with its budget; the disruptive ones last: the auth burst before the sweep,
    so the login limit (not a default limit the sweep used up) answers it; the inside view
    last, so it sees what every other probe caused."""
    from readykit.check.probes import (
        cors,
        exposure,
        health,
        input_handling,
        inside_view,
        observability,
        performance,
        rate_limiting,
        security_headers,
        tls,
    )

    return [
        ProbeSpec("health", health.run, max_requests=50, time_s=8.0),
        ProbeSpec("security-headers", security_headers.run, max_requests=6, time_s=5.0),
        ProbeSpec("exposure", exposure.run, max_requests=90, time_s=12.0),
        ProbeSpec("input-handling", input_handling.run, max_requests=140, time_s=15.0),
        ProbeSpec("cors", cors.run, max_requests=10, time_s=5.0),
        ProbeSpec("observability", observability.run, max_requests=10, time_s=5.0),
        ProbeSpec("tls", tls.run, max_requests=4, time_s=10.0),
        ProbeSpec("rate-limiting", rate_limiting.run, max_requests=160, time_s=12.0),
        ProbeSpec("performance", performance.run, max_requests=200, time_s=30.0),
        ProbeSpec("inside-view", inside_view.run, max_requests=14, time_s=8.0),
    ]
