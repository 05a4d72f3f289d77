"""The contract between the kit and its features: what a feature may add, and nothing else.

Each feature (guards, cache, records, privacy, dashboard, jobs, or a third party's) installs
itself through `Setup`, the narrow interface `ReadyKit` gives it; it never imports
`readykit.kit`, and what it needs of another feature is passed to it explicitly. Its settings
are a section (readykit.section), read with `setup.section(...)` from the same `READYKIT_*`
variables and validated once, by the model; a mistake in them (or any ConfigurationError of
`install`) is kept by `kit.add_feature`, and the service refuses to start through lifespan with
that one line, as for the kit's own settings. A minimal third-party feature:

```python
class TeapotConfig(Section):
    teapot_strength: int = Field(default=3, ge=1)  # READYKIT_TEAPOT_STRENGTH


class Teapot:
    name = "teapot"

    def install(self, setup: Setup) -> None:
        config = setup.section(TeapotConfig)  # a bad value: one line naming the variable

        async def brew(scope, receive, send):
            await send_problem(send, 418, f"Strength {config.teapot_strength}.")

        setup.add_ops_route("/teapot", brew)


kit.add_feature(Teapot())  # before kit.wrap(app)
```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from readykit._types import ASGIApp, Receive, Scope, Send
from readykit.record import Recorder
from readykit.section import S

if TYPE_CHECKING:
    from readykit.access import OpsAccess
    from readykit.health.registry import CheckFn, HealthRegistry, Kind
    from readykit.metrics import Metrics
    from readykit.proxies import TrustedProxies
    from readykit.settings import Settings
    from readykit.stage import Stage

Hook = Callable[[], Awaitable[Any]]
Guard = Callable[[ASGIApp], ASGIApp]
When = Callable[[Scope], bool]
"""Which requests an ASGI guard concerns (`Setup.add_guard(..., when=)`)."""
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class Setup(Protocol):
    """What a feature can reach and add while it installs.

    `wrap()` fixes the pipeline and the lifecycle: guards, stages, ops routes, features,
    startup and shutdown hooks and startup checks added after it raise ConfigurationError.
    Recorders and readiness or liveness checks may still be added (they are read when used).
    """

    settings: Settings
    """Every built-in section at once; a feature reads its own with `section()`."""
    metrics: Metrics
    health: HealthRegistry
    proxies: TrustedProxies
    access: OpsAccess
    """Who may reach ops endpoints (the token, or a trusted loopback): one rule for all."""
    draining: bool
    """True once shutdown has begun (before the app's and the features' shutdown hooks run)."""

    def add_guard(
        self,
        order: int,
        guard: Guard,
        *,
        ops: bool | Guard = False,
        when: When | None = None,
    ) -> None:
        """A pure-ASGI guard around the app, for the requests `when` accepts (see
        ReadyKit.add_guard)."""

    def add_stage(self, order: int, stage: Stage, *, ops: bool | Stage = False) -> None:
        """A guard compiled into the kit's layer (see readykit.stage)."""

    def add_recorder(self, recorder: Recorder) -> None:
        """A callable handed every finished request's RequestRecord; it must not block."""

    def add_ops_route(self, path: str, handler: Handler) -> None:
        """An endpoint the kit serves in front of the app, at exactly `path`."""

    def add_check(
        self,
        name: str,
        fn: CheckFn,
        *,
        timeout: float = 1.0,
        kind: Kind = "readiness",
        critical: bool = True,
        component_type: str | None = None,
        measurement: str | None = None,
    ) -> None:
        """A health check."""

    def on_startup(self, hook: Hook) -> Hook:
        """Run at lifespan startup."""

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run at lifespan shutdown (reverse order)."""

    def section(self, section: type[S]) -> S:
        """The settings of `section` (readykit.section): the kit's own for a built-in one, else
        read from the same `READYKIT_*` variables, validated once (a third party's section)."""

    def resolve_principal(self, scope: Scope) -> str | None:
        """Who is calling (the kit's one principal resolver; never raises)."""

    def route_of(self, scope: Scope, root_path: str = "") -> str:
        """The route template of an answered request (the kit's one route resolver)."""

    def client_key(self, scope: Scope) -> str | None:
        """Whom rate limits count against."""


class Feature(Protocol):
    """A part of the kit: `install` adds its guards, recorders, routes, checks and hooks."""

    name: str

    def install(self, setup: Setup) -> None: ...
