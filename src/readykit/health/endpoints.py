"""The three health endpoints: /health/live, /health/ready and the detailed /health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from readykit._types import Receive, Scope, Send
from readykit.access import OpsAccess
from readykit.health import render
from readykit.health.registry import CheckResult, HealthRegistry
from readykit.problem import refuse_method, send_bytes

if TYPE_CHECKING:
    from readykit.health.config import HealthConfig

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def event_loop_lag(max_lag_ms: float) -> CheckResult:
    """How long a callback waits for the loop right now; the liveness signal of the process."""
    started = time.perf_counter()
    await asyncio.sleep(0)
    lag_ms = round((time.perf_counter() - started) * 1000, 3)
    return CheckResult(
        name="eventLoop",
        kind="liveness",
        critical=True,
        component_type="system",
        measurement="lag",
        status="pass" if lag_ms <= max_lag_ms else "fail",
        duration_ms=lag_ms,
        time=_now(),
        observed_value=lag_ms,
        observed_unit="ms",
    )


def _lifecycle(output: str, measurement: str) -> CheckResult:
    return CheckResult(
        name="lifecycle",
        kind="readiness",
        critical=True,
        component_type="system",
        measurement=measurement,
        status="fail",
        duration_ms=0.0,
        time=_now(),
        output=output,
    )


class HealthEndpoints:
    """ASGI handlers for the health paths, served by the kit in front of the app."""

    def __init__(
        self,
        registry: HealthRegistry,
        config: HealthConfig,
        access: OpsAccess,
        lifecycle: Callable[[], tuple[str, str] | None],
    ) -> None:
        """`lifecycle`: why the service is not ready whatever its checks say, and the phase
        (`startup`: not started; `shutdown`: draining), or None."""
        self.registry = registry
        self.config = config
        self.lifecycle = lifecycle
        self.access = access

    def routes(self) -> dict[str, Handler]:
        prefix = self.config.health_prefix
        return {
            f"{prefix}/live": self.live,
            f"{prefix}/ready": self.ready,
            prefix: self.full,
        }

    async def live(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Liveness only: the event loop and liveness checks; never a dependency check."""
        if await refuse_method(scope, send):
            return
        results = [await event_loop_lag(self.config.liveness_max_lag_ms)]
        results += await self.registry.run(("liveness",))
        await self._respond(scope, send, results, detailed=False)

    async def ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Readiness: the readiness checks, and fail while the service drains at shutdown."""
        if await refuse_method(scope, send):
            return
        results = await self.registry.run(("readiness",))
        if (why := self.lifecycle()) is not None:
            results.append(_lifecycle(*why))
        await self._respond(scope, send, results, detailed=False)

    async def full(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every check; details (output, values) only for the ops token (see readykit.access)."""
        if await refuse_method(scope, send):
            return
        results = [await event_loop_lag(self.config.liveness_max_lag_ms)]
        results += await self.registry.run()
        if (why := self.lifecycle()) is not None:
            results.append(_lifecycle(*why))
        await self._respond(scope, send, results, detailed=self.access.allowed(scope))

    async def _respond(
        self, scope: Scope, send: Send, results: list[CheckResult], *, detailed: bool
    ) -> None:
        status = render.overall(results)
        payload = render.body(
            status,
            results,
            detailed=detailed,
            description=self.config.service_name,
            version=self.config.service_version,
        )
        code = 503 if status == "fail" else 200
        head = scope["method"] == "HEAD"
        await send_bytes(send, code, payload, render.HEALTH_JSON, head=head)
