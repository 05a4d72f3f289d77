"""ReadyKit: composes settings, health, recorders and lifecycle; `wrap(app)` puts it in front."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, ParamSpec, TypeVar

from readykit._types import ASGIApp, Receive, Scope, Send
from readykit.access import OpsAccess
from readykit.builtin import BuiltIns
from readykit.cache import cached
from readykit.durations import Duration
from readykit.errors import ConfigurationError
from readykit.feature import Feature, Guard, Hook, When
from readykit.guards import ORDER_STAGES
from readykit.health.endpoints import Handler, HealthEndpoints
from readykit.health.registry import CheckFn, HealthRegistry, Kind
from readykit.jobs import JobRun, Jobs
from readykit.lifespan import run_lifespan
from readykit.logging import AccessLog, configure_logging
from readykit.logging.redact import use_keys
from readykit.logging.setup import flush_access_log as flush_lane
from readykit.metrics import Metrics
from readykit.middleware import Chain, Pipeline, ReadyKitMiddleware
from readykit.privacy import Privacy
from readykit.problem import send_problem
from readykit.proxies import TrustedProxies, address_group
from readykit.record import Recorder, excluding
from readykit.records import Audit, Records
from readykit.route_table import route_path
from readykit.routing import RouteResolver, RouteTemplate, route_template
from readykit.section import S
from readykit.settings import Settings, name_the_variable, read_section
from readykit.stage import Stage

logger = logging.getLogger("readykit")

Principal = Callable[[Scope], str | None]
F = TypeVar("F", bound=CheckFn)
P = ParamSpec("P")
R = TypeVar("R")


def default_principal(scope: Scope) -> str | None:
    """The authenticated user's identity as an authentication middleware left it in the scope."""
    user = scope.get("user")
    if user is None:
        return None
    try:
        identity = user.identity
    except Exception:  # Starlette's UnauthenticatedUser raises NotImplementedError
        return None
    return str(identity) if identity else None


_PRINCIPAL = "readykit.principal"  # the scope key a request's resolved principal is kept under

# what a kit whose configuration is invalid is built from: nothing that writes or listens
_INERT = Settings.model_construct(
    records=False, dashboard=False, configure_logging=False, privacy_endpoints=False,
    access_log=False, jobs_scheduler=False,
)  # fmt: skip


class RefuseToStart:
    """The app `wrap()` returns for an invalid configuration: fails startup, serves nothing."""

    def __init__(self, error: ConfigurationError) -> None:
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": str(self.error)})
            return
        if scope["type"] == "http":
            await send_problem(send, 503, "The service is misconfigured; its log says how.")


def _shadowing(path: str, settings: Settings) -> str:
    """The line for an app route the kit's own endpoint would hide, naming how to move it."""
    if path.startswith(settings.health_prefix):
        fix = f"READYKIT_HEALTH_PREFIX (now {settings.health_prefix})"
    elif path == settings.metrics_path:
        fix = f"READYKIT_METRICS_PATH (now {settings.metrics_path})"
    else:
        fix = "READYKIT_DASHBOARD=false"
    return (
        f"the app's own route GET {path} would be hidden by readykit's {path}; "
        f"move readykit's with {fix}, or remove the app's route"
    )


NOT_STARTED = (
    "readykit is not started: the server sent no ASGI lifespan startup (uvicorn --lifespan "
    "off?), so its audit writer, jobs and flushes are not running; serve with lifespan on"
)


class StartupCheckFailed(ConfigurationError):
    """A startup check failed, so the service refuses to start."""


class ReadyKit:
    """Every production layer for one ASGI service.

    Args:
        settings: the configuration; `ReadyKit()` reads it from `READYKIT_*` variables.
        principal: who is calling, from the ASGI scope (str or None); one resolver for audit
            actor, per-user cache keys, rate-limit keys and the privacy subject.
        rate_limit_key: whom rate limits count against (default: the client address).
        route_template: the route of a request as a template (`/quotes/{id}`), for apps whose
            framework the kit cannot read (`readykit.contrib.django.route_template`); None
            falls back to the framework's own.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        principal: Principal | None = None,
        rate_limit_key: Principal | None = None,
        route_template: RouteTemplate | None = None,
    ):
        self.config_error: ConfigurationError | None = None
        try:
            self._build(settings if settings is not None else Settings(), principal)
        except ConfigurationError as exc:
            # a mistake in the configuration: the service refuses to start through lifespan,
            # with one line naming the variable, instead of a traceback at import time
            self.config_error = ConfigurationError(name_the_variable(str(exc)))
            self._build(_INERT, principal)
        self._rate_limit_key = rate_limit_key
        self._route_template = route_template

    def _build(self, settings: Settings, principal: Principal | None) -> None:
        self.settings = settings
        use_keys(settings.redact_keys)  # every sink of the process, not only logs and records
        self.principal = principal or default_principal
        self.proxies = TrustedProxies(
            self.settings.trusted_proxies, header=self.settings.forwarded_header
        )
        self.health = HealthRegistry(cache_s=self.settings.health_cache_s)
        self.draining = False
        self._recorders: list[Recorder] = []
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._guards: list[tuple[int, Guard, bool | Guard, When | None]] = []
        self._stages: list[tuple[int, Stage, bool | Stage]] = []
        self._wrapped = False
        self._routes: RouteResolver | None = None  # built by wrap() from the app's routes
        # one rule for every ops endpoint; wrong tokens count against the client as the trusted
        # proxies name it (an IPv6 one by its /64), like every other per-client limit
        self.access = OpsAccess.from_settings(self.settings, self.guesser)
        self.started = False  # by the ASGI lifespan's startup
        self._said_not_started = False
        endpoints = HealthEndpoints(self.health, self.settings, self.access, self._lifecycle)
        self._ops_routes: dict[str, Handler] = endpoints.routes()
        if self.settings.configure_logging:

            async def start_logging() -> None:
                configure_logging(self.settings)

            self.on_startup(start_logging)
        excluded = self.settings.exclude_paths
        if self.settings.access_log:
            self.add_recorder(excluding(AccessLog(), excluded))

            async def flush_access_log() -> None:
                flush_lane()

            self.on_shutdown(flush_access_log)
        self.metrics = Metrics(self.settings, self.access)
        self._active_requests: Callable[[str], Any] | None = None
        if self.settings.metrics:
            self._add_ops_route(self.settings.metrics_path, self.metrics.endpoint)
            self.add_recorder(excluding(self.metrics.http, excluded))
            self._active_requests = self.metrics.http.active_for
            self.health.result_hooks.append(self.metrics.health)

            async def start_metrics() -> None:
                self.metrics.start()

            async def stop_metrics() -> None:
                self.metrics.stop()

            self.on_startup(start_metrics)
            self.on_shutdown(stop_metrics)
        self.privacy = Privacy()
        # what one feature needs of another is handed to it (readykit.builtin), never looked
        # up on the kit; the kit installs each the way it installs a user's (add_feature)
        built_in = BuiltIns(self.privacy)
        self.features: list[Feature] = []
        for feature in built_in:
            self._install(feature)  # a mistake here rebuilds the kit inert (__init__)
        self.rate_limiter = built_in.guards.rate_limiter
        self.cache = built_in.cache.cache
        self.records: Records | None = built_in.records.records
        self.privacy_jobs = built_in.privacy.jobs
        self.dashboard = built_in.dashboard.dashboard
        self.jobs: Jobs = built_in.jobs.jobs

    def check(
        self,
        name: str,
        *,
        timeout: float = 1.0,
        kind: Kind = "readiness",
        critical: bool = True,
        component_type: str | None = None,
        measurement: str | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function (sync or async, no arguments) as a health check.

        Returning normally passes; raising or returning False fails; past `timeout` fails.
        `critical=False` readiness checks only warn. Kinds: readiness, liveness, startup.
        """

        def register(fn: F) -> F:
            self.add_check(
                name,
                fn,
                timeout=timeout,
                kind=kind,
                critical=critical,
                component_type=component_type,
                measurement=measurement,
            )
            return fn

        return register

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
        """Register `fn` as a health check without a decorator (e.g. a built-in check).

        Readiness and liveness checks may be added after `wrap()` (each probe runs the checks
        registered then); a startup check may not, as startup may have run already.
        """
        if kind == "startup":
            self._refuse_after_wrap(f"add_check({name!r}, kind='startup')")
        self.health.add(
            name,
            fn,
            timeout=timeout,
            kind=kind,
            critical=critical,
            component_type=component_type,
            measurement=measurement,
        )

    @property
    def audit(self) -> Audit:
        """The audit log: `await kit.audit.record("quote.create", resource=..., actor=...)`."""
        if self.records is None:
            raise ConfigurationError("the audit log needs READYKIT_RECORDS=true")
        return self.records.audit

    def cached(
        self, *, ttl: float, tags: Iterable[str] = (), key: Callable[..., str] | None = None
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """Cache an async function's JSON-able results for `ttl` seconds, computed once.

        `tags` name groups of entries that `await kit.invalidate(tag)` drops; `key` builds the
        cache key from the call's arguments (default: the arguments themselves).
        """
        return cached(self.cache, ttl=ttl, tags=tags, key=key)

    def job(
        self,
        name: str,
        *,
        every: Duration,
        grace: Duration | None = None,
        timeout: Duration | None = None,
        critical: bool = False,
    ) -> Callable[[F], F]:
        """Run the decorated (sync or async, argument-free) function every `every`, recorded.

        `grace`: how late a run may be before the job counts as late (default a tenth of
        `every`, 1 min to 1 h); `timeout`: the longest a run may take (default `grace`);
        `critical=True`: a late or failing job fails readiness instead of warning.
        """
        return self.jobs.job(name, every=every, grace=grace, timeout=timeout, critical=critical)

    def job_run(self, name: str) -> AbstractAsyncContextManager[JobRun]:
        """`async with kit.job_run("backup.nightly"):` records one run of a job run elsewhere."""
        return self.jobs.run(name)

    async def invalidate(self, tag: str) -> int:
        """Drop every cached entry (function results and responses) tagged `tag`."""
        return await self.cache.invalidate(tag)

    def add_ops_route(self, path: str, handler: Handler) -> None:
        """Serve `handler` at exactly `path`, in front of the app (like /health, /metrics)."""
        self._refuse_after_wrap(f"add_ops_route({path!r})")
        self._add_ops_route(path, handler)

    def _add_ops_route(self, path: str, handler: Handler) -> None:
        if path in self._ops_routes:  # one would hide the other (metrics answering readiness)
            raise ConfigurationError(
                f"readykit would serve two of its endpoints at {path}: give "
                f"READYKIT_METRICS_PATH (now {self.settings.metrics_path}) and "
                f"READYKIT_HEALTH_PREFIX (now {self.settings.health_prefix}) paths that do not "
                "overlap (the dashboard is under /ops)"
            )
        self._ops_routes[path] = handler

    def add_feature(self, feature: Feature) -> None:
        """Install a feature (see readykit.feature) through the kit's Setup interface.

        A ConfigurationError of its install (an invalid `READYKIT_*` value of its section, a
        missing extra) is kept, as one of the kit's own settings is: `wrap()` then refuses to
        start through lifespan with that one line, instead of a traceback at import time.
        """
        self._refuse_after_wrap(f"add_feature({feature.name!r})")
        try:
            self._install(feature)
        except ConfigurationError as exc:
            if self.config_error is None:  # the first mistake is the one the service names
                self.config_error = ConfigurationError(name_the_variable(str(exc)))

    def _install(self, feature: Feature) -> None:
        feature.install(self)
        self.features.append(feature)

    def add_recorder(self, recorder: Recorder) -> None:
        """Hand every finished request's RequestRecord to `recorder`; it must not block.

        May be called after `wrap()` (e.g. a test's RecordCollector): the layer reads the
        recorders at each request, so it gets every request from then on.
        """
        self._recorders.append(recorder)

    def on_startup(self, hook: Hook) -> Hook:
        """Run `hook` at lifespan startup, before the app's own startup."""
        self._refuse_after_wrap("on_startup")
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run `hook` at lifespan shutdown, after the app's own shutdown (reverse order)."""
        self._refuse_after_wrap("on_shutdown")
        self._shutdown.append(hook)
        return hook

    def add_guard(
        self, order: int, guard: Guard, *, ops: bool | Guard = False, when: When | None = None
    ) -> None:
        """Put `guard` (an ASGI app in, an ASGI app out) around the app, at `order`.

        The orders of readykit's own guards and stages are in `readykit.guards`; lower is
        outer. A guard ordered before the stages (`ORDER_STAGES`) wraps them and sees their
        refusals; any other runs inside them, just around the app. `when(scope)` limits the
        guard to the requests it concerns (others skip it entirely); `ops` puts it in front of
        the kit's own endpoints too: True for the same guard, or another factory for a variant.
        Adding one after `wrap()` raises, rather than being silently ignored.
        """
        self._refuse_after_wrap("add_guard")
        self._guards.append((order, guard, ops, when))

    def add_stage(self, order: int, stage: Stage, *, ops: bool | Stage = False) -> None:
        """Compile `stage` (see `readykit.stage`) into the kit's layer, at `order`; `ops`: also
        in front of the kit's own endpoints (True), or a variant of it for them."""
        self._refuse_after_wrap("add_stage")
        self._stages.append((order, stage, ops))

    def _refuse_after_wrap(self, what: str) -> None:
        """Raise for what `wrap()` has fixed: the request pipeline (guards, stages, ops routes,
        features) and the lifecycle (startup and shutdown hooks and checks)."""
        if not self._wrapped:
            return
        fixed = (
            "wrap() fixes the kit's request pipeline and lifecycle (guards, stages, ops routes, "
            "features, startup and shutdown hooks, startup checks)"
        )
        if what == "wrap":
            raise ConfigurationError(
                f"wrap() called twice: {fixed}; wrap one app per kit (a ReadyKit for each)"
            )
        raise ConfigurationError(
            f"{what} after wrap(): {fixed}; call {what.partition('(')[0]} before wrap()"
        )

    def _pipeline(self, app: ASGIApp, *, ops: bool) -> Pipeline:
        """The stages and guards a request to the app (or, with `ops`, to the kit's own
        endpoints) goes through, in their order."""
        stages: list[Stage] = []
        for _, stage, for_ops in sorted(self._stages, key=lambda s: s[0]):
            if not ops or for_ops is True:
                stages.append(stage)
            elif for_ops is not False:
                stages.append(for_ops)
        outer: list[tuple[Guard, When | None]] = []
        inner: list[tuple[Guard, When | None]] = []
        for order, guard, guard_ops, when in sorted(self._guards, key=lambda g: g[0]):
            if ops:
                if guard_ops is False:
                    continue
                guard = guard if guard_ops is True else guard_ops
            (outer if order < ORDER_STAGES else inner).append((guard, when))
        return Pipeline(stages, outer, Chain(app, inner))

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """Put the kit in front of any ASGI app; the result handles lifespan for both.

        With a configuration error, the result fails lifespan startup with that one line (the
        server exits) and answers any request 503 problem+json. Call it once, after every
        guard, ops route, feature and startup or shutdown hook: those raise after it.
        """
        self._refuse_after_wrap("wrap")
        self._wrapped = True
        if self.config_error is not None:
            return RefuseToStart(self.config_error)
        routes = self._routes = RouteResolver(app, self._route_template)
        shadowed = [path for path in self._ops_routes if routes.explicit("GET", path)]
        if shadowed:
            return RefuseToStart(ConfigurationError(_shadowing(shadowed[0], self.settings)))
        return ReadyKitMiddleware(
            app,
            self,
            routes,
            self._pipeline(app, ops=False),
            self._pipeline(self._serve_ops, ops=True),
        )

    async def _serve_ops(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._ops_routes[route_path(scope)](scope, receive, send)

    def guesser(self, scope: Scope) -> str:
        """Whom a wrong ops token or login counts against: the client (as the trusted proxies
        name it), an IPv6 one by its /64 (one host holds all of it)."""
        return address_group(self.proxies.client(scope) or "-")

    def client_key(self, scope: Scope) -> str | None:
        """Whom rate limits count against: the key function's answer, else the client."""
        if self._rate_limit_key is not None:
            key = self._rate_limit_key(scope)
            if key:
                return f"key:{key}"
        elif self.settings.rate_limit_by == "principal":
            principal = self.resolve_principal(scope)
            if principal:
                return f"principal:{principal}"
        client = self.proxies.client(scope)
        if client is None:
            return None
        return f"client:{address_group(client) if ':' in client else client}"

    async def startup(self) -> None:
        """Run startup hooks, then the startup checks; a failed check stops the service."""
        self.draining = False
        for hook in self._startup:
            await hook()
        results = await self.health.run(("startup",))
        failed = [r for r in results if r.status == "fail"]
        if failed:
            reasons = "; ".join(f"{r.name}: {r.output or 'failed'}" for r in failed)
            raise StartupCheckFailed(f"startup checks failed: {reasons}")
        self.started = True

    async def shutdown(self) -> None:
        """Run shutdown hooks in reverse order of registration, then release checks' clients."""
        for hook in reversed(self._shutdown):
            try:
                await hook()
            except Exception:
                logger.exception("readykit shutdown hook %r failed", hook)
        await self.health.aclose()

    def _lifecycle(self) -> tuple[str, str] | None:
        """Why the service is not ready whatever its checks say, or None."""
        if self.draining:
            return "shutting down: draining traffic", "shutdown"
        if not self.started:
            if not self._said_not_started:  # once, where the operator looks first
                self._said_not_started = True
                logger.error(NOT_STARTED)
            return NOT_STARTED, "startup"
        return None

    def _begin_drain(self) -> None:
        self.draining = True
        logger.info("shutting down: readiness now fails so load balancers drain")

    async def _lifespan(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        await run_lifespan(
            app,
            scope,
            receive,
            send,
            startup=self.startup,
            begin_drain=self._begin_drain,
            shutdown=self.shutdown,
        )

    def section(self, section: type[S]) -> S:
        """The settings of `section` (readykit.section): this kit's own for a built-in one,
        else read from the same `READYKIT_*` variables and validated once (a third party's)."""
        if isinstance(self.settings, section):
            return self.settings
        return read_section(section)

    def route_of(self, scope: Scope, root_path: str = "") -> str:
        """The route template of a request the app has answered (`root_path` as it came in)."""
        if self._routes is None:
            return route_template(scope)
        return self._routes(scope, root_path)

    def resolve_principal(self, scope: Scope) -> str | None:
        """Who is calling, by the kit's principal resolver; None if it fails (logged).

        Resolved once per request and shared (rate limit, cache, audit, the record): a caller
        once named is kept in the scope. An unnamed one is asked again, as an authentication
        layer inside the app may name them only once it has run.
        """
        known = scope.get(_PRINCIPAL)
        if known is not None:
            return known  # type: ignore[no-any-return]
        try:
            principal = self.principal(scope)
        except Exception:
            logger.exception("the principal resolver failed")
            return None
        if principal is not None:
            scope[_PRINCIPAL] = principal
        return principal
