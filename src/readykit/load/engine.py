"""The load loop of one process: asyncio + aiohttp, closed model (users) or open model (rate).

Open model: sends follow a fixed schedule and latency is measured from each send's *intended*
time (coordinated-omission correction, as wrk2); the service time from the actual send is kept
apart. A send the generator starts more than `LATE_S` after its intended time, or drops because
too many are pending, is a *missed send*.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from readykit.load import scenario as sc
from readykit.load.rawhttp import Pool, RawHTTPError
from readykit.load.stats import Interval, new_histogram, record

LATE_S = 0.010  # a send started later than this after its intended time was missed
MAX_PENDING = 50_000  # open model: sends waiting for a connection before new ones are dropped
DRAIN_S = 5.0  # after the run, how long in-flight requests may still finish
USER_AGENT = "readykit-load"
# a response body is kept (for checks, captures and scripts) up to this size; the rest is read
# and dropped, so a 10 GiB body costs time, never memory
KEEP_BODY = 1024 * 1024
READ_AT_ONCE = 64 * 1024


@dataclass(frozen=True)
class RunSpec:
    """One run's load shape for one process (a worker's share of users or rate)."""

    users: int | None = None
    rate: float | None = None
    duration_s: float = 10.0
    interval_s: float = 0.25
    connections: int = 256
    timeout_s: float = 10.0
    max_requests: int | None = None  # measured requests: the warm-up comes on top
    warmup_intervals: int = 0
    seed: int | None = None

    @property
    def open_model(self) -> bool:
        return self.rate is not None


@dataclass
class Totals:
    """What a process reports at the end beside its intervals."""

    scheduled: int = 0
    missed: int = 0
    unfinished: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0


class Response:
    """What a Python scenario's request returns: status, headers, body."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class ScriptUser:
    """The object a Python scenario's `scenario(user)` receives; every request is measured."""

    def __init__(self, engine: Engine, intended: float | None) -> None:
        self._engine = engine
        self._intended = intended
        self.vars: dict[str, Any] = {}

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """Send a request (aiohttp keyword arguments: headers, json, data, params)."""
        intended, self._intended = self._intended, None
        return await self._engine.timed(method.upper(), path, intended, kwargs, sc.Check())

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)


class _Failed(Exception):
    """A request failed with an error kind already counted; the flow stops here."""


def error_kind(exc: BaseException) -> str:
    """The error kind a transport exception is counted under."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "payload"
    if isinstance(exc, aiohttp.ClientOSError):
        return "connection_reset"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "protocol"
    if isinstance(exc, aiohttp.ClientError):
        return f"client_{type(exc).__name__}"
    return f"script_{type(exc).__name__}"


def _small(resp: aiohttp.ClientResponse, limit: int) -> bool:
    """Whether the whole body is declared to fit in `limit` bytes (compressed ones never do:
    their Content-Length is not what they inflate to)."""
    length = resp.content_length
    return length is not None and length <= limit and "Content-Encoding" not in resp.headers


async def _read_kept(resp: aiohttp.ClientResponse) -> bytes:
    """The body's first `KEEP_BODY` bytes; the rest is read and dropped."""
    if _small(resp, KEEP_BODY):
        return await resp.read()
    kept = bytearray()
    while chunk := await resp.content.read(READ_AT_ONCE):
        if len(kept) < KEEP_BODY:
            kept += chunk[: KEEP_BODY - len(kept)]
    return bytes(kept)


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read the body and keep none of it (at most `READ_AT_ONCE` bytes held at a time)."""
    if _small(resp, READ_AT_ONCE):
        await resp.read()
        return
    while await resp.content.read(READ_AT_ONCE):
        pass


@dataclass
class Engine:
    """Runs one process's share of a load test and emits an `Interval` every `interval_s`."""

    scenario: sc.Scenario
    spec: RunSpec
    emit: Callable[[Interval], None]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] = time.monotonic
    """Seconds, monotonic; its rate must match the event loop's (tests pass a virtual loop's
    `time`, so sleeps, timeouts and latencies all run on the same fake clock)."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.spec.seed)
        self.current = Interval(0, service=new_histogram() if self.spec.open_model else None)
        self.totals = Totals()
        self.done_requests = 0
        self.session: aiohttp.ClientSession | None = None
        flows = self.scenario.flows
        self._weights = [f.weight for f in flows]
        self._fast_url: URL | None = None
        self._raw: Pool | None = None
        if self.scenario.single_get:
            url = sc.step_url(self.scenario.base_url, flows[0].steps[0].path)
            self._fast_url = URL(url, encoded=True)
            if Pool.supports(url):
                self._raw = Pool(url, USER_AGENT)

    # --- recording ---------------------------------------------------------------------------

    def _ok(self, latency_s: float, service_s: float | None, error: str | None) -> None:
        cur = self.current
        cur.requests += 1
        record(cur.hist, latency_s)
        if service_s is not None and cur.service is not None:
            record(cur.service, service_s)
        if error is not None:
            cur.errors[error] += 1
        self._count()

    def _error(self, kind: str) -> None:
        self.current.requests += 1
        self.current.errors[kind] += 1
        self._count()

    def _count(self) -> None:
        # the cap counts measured requests only: a cap spent in the warm-up measured nothing
        if self.current.index < self.spec.warmup_intervals:
            return
        self.done_requests += 1
        if self.spec.max_requests is not None and self.done_requests >= self.spec.max_requests:
            self.stop.set()

    def _rotate(self) -> None:
        done, self.current = (
            self.current,
            Interval(
                self.current.index + 1, service=new_histogram() if self.spec.open_model else None
            ),
        )
        self.emit(done)

    # --- requests ----------------------------------------------------------------------------

    async def timed(
        self,
        method: str,
        path: str,
        intended: float | None,
        kwargs: dict[str, Any],
        check: sc.Check,
    ) -> Response:
        """Send one request, record its latency (from `intended` when given) or its error."""
        assert self.session is not None
        url = sc.step_url(self.scenario.base_url, path)
        start = self.clock()
        try:
            # a redirect is a response like any other: one request, measured, never followed
            # (as on the fast path); a script may still pass allow_redirects=True
            kwargs = {"allow_redirects": False, **kwargs}
            async with self.session.request(method, url, **kwargs) as resp:
                body = await _read_kept(resp)
                status, headers = resp.status, resp.headers
        except Exception as exc:
            kind = error_kind(exc)
            if kind.startswith("script_"):  # bad arguments from a script: nothing was sent
                self.current.errors[kind] += 1
            else:
                self._error(kind)
            if kind == "connect":
                await asyncio.sleep(0.01)  # a refused connection must not become a busy loop
            raise _Failed(kind) from exc
        end = self.clock()
        failure = sc.check_failure(check, status, body)
        if intended is None:
            self._ok(end - start, end - start if self.spec.open_model else None, failure)
        else:
            self._ok(end - intended, end - start, failure)
        if failure is not None:
            raise _Failed(failure)
        return Response(status, headers, body)

    async def _raw_get(self, pool: Pool, intended: float | None) -> None:
        start = self.clock()
        try:
            status = await pool.get(self.spec.timeout_s)
        except RawHTTPError as exc:
            self._error(exc.kind)
            if exc.kind == "connect":
                await asyncio.sleep(0.01)
            return
        end = self.clock()
        error = f"http_{status}" if status >= 400 else None
        if intended is None:
            self._ok(end - start, end - start if self.spec.open_model else None, error)
        else:
            self._ok(end - intended, end - start, error)

    async def _fast_get(self, intended: float | None) -> None:
        session, url = self.session, self._fast_url
        assert session is not None
        assert url is not None
        start = self.clock()
        try:
            async with session.get(url, allow_redirects=False) as resp:
                await _drain(resp)
                status = resp.status
        except Exception as exc:
            kind = error_kind(exc)
            self._error(kind)
            if kind == "connect":
                await asyncio.sleep(0.01)
            return
        end = self.clock()
        error = f"http_{status}" if status >= 400 else None
        if intended is None:
            self._ok(end - start, end - start if self.spec.open_model else None, error)
        else:
            self._ok(end - intended, end - start, error)

    async def _flow(self, intended: float | None) -> None:
        """One iteration of the scenario for one user."""
        if self._raw is not None:
            await self._raw_get(self._raw, intended)
            return
        if self._fast_url is not None:
            await self._fast_get(intended)
            return
        if self.scenario.script is not None:
            try:
                await self.scenario.script(ScriptUser(self, intended))
            except _Failed:
                pass
            except (Exception, SystemExit) as exc:  # the user's script failed: never fatal
                # an error of the script, not a request: counted like a failed capture
                self.current.errors[error_kind(exc)] += 1
            return
        flows = self.scenario.flows
        flow = flows[0] if len(flows) == 1 else self.rng.choices(flows, self._weights)[0]
        variables: dict[str, str] = {}
        for step in flow.steps:
            kwargs: dict[str, Any] = {}
            if step.headers:
                kwargs["headers"] = sc.substitute(dict(step.headers), variables)
            if step.json is not None:
                kwargs["json"] = sc.substitute(step.json, variables)
            if step.body is not None:
                kwargs["data"] = sc.substitute(step.body, variables).encode()
            try:
                resp = await self.timed(
                    step.method, sc.substitute(step.path, variables), intended, kwargs, step.check
                )
            except _Failed:
                return
            intended = None
            for name, spec in step.captures.items():
                value = sc.capture(spec, resp.status, resp.headers, resp.body)
                if value is None:
                    self.current.errors[f"capture_{name}"] += 1
                    return
                variables[name] = value
            if step.think_s:
                await asyncio.sleep(step.think_s)

    # --- models ------------------------------------------------------------------------------

    async def _closed_user(self) -> None:
        while not self.stop.is_set():
            await self._flow(None)

    async def _open_send(self, intended: float, slots: asyncio.Semaphore) -> None:
        async with slots:
            await self._flow(intended)

    async def _dispatch(self, end: float, inflight: set[asyncio.Task[None]]) -> None:
        assert self.spec.rate is not None
        period = 1.0 / self.spec.rate
        slots = asyncio.Semaphore(self.spec.connections)
        start = self.clock()
        i = 0
        while not self.stop.is_set():
            now = self.clock()
            fired = 0
            intended = start + i * period
            while intended <= now and fired < 256:  # bounded, so the loop still yields
                if intended >= end:
                    return
                i += 1
                fired += 1
                self.totals.scheduled += 1
                self.current.scheduled += 1
                full = len(inflight) >= MAX_PENDING
                if full or now - intended > LATE_S:
                    self.totals.missed += 1
                    self.current.missed += 1
                if not full:
                    task = asyncio.create_task(self._open_send(intended, slots))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                intended = start + i * period
            if intended >= end:
                return
            await asyncio.sleep(max(0.0, intended - self.clock()))

    async def _ticker(self, start: float, end: float) -> None:
        k = 1
        while True:
            boundary = start + k * self.spec.interval_s
            if boundary >= end - 1e-9:
                return
            await asyncio.sleep(max(0.0, boundary - self.clock()))
            self._rotate()
            k += 1

    async def run(self) -> Totals:
        """Run until the duration ends, `stop` is set, or `max_requests` are done."""
        spec = self.spec
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
        ) as session:
            self.session = session
            start = self.clock()
            end = start + spec.duration_s
            ticker = asyncio.create_task(self._ticker(start, end))
            stopper = asyncio.get_running_loop().call_later(spec.duration_s, self.stop.set)
            inflight: set[asyncio.Task[None]] = set()
            if spec.open_model:
                await self._dispatch(end, inflight)
                await self.stop.wait()
            else:
                users = [asyncio.create_task(self._closed_user()) for _ in range(spec.users or 1)]
                inflight.update(users)
                await self.stop.wait()
            stopper.cancel()
            limited = spec.max_requests is not None and self.done_requests >= spec.max_requests
            self.totals.interrupted = self.clock() < end - 0.05 and not limited
            if inflight:
                _, pending = await asyncio.wait(inflight, timeout=min(DRAIN_S, spec.timeout_s))
                # in both models: a closed-model user stuck in a request is one unfinished
                self.totals.unfinished = len(pending)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if self._raw is not None:
                self._raw.close()
            self.totals.elapsed_s = min(self.clock(), end) - start
            self.emit(self.current)
        return self.totals


# Ctrl-C and SIGTERM both stop a run cleanly with what ran; the last one received is kept
# (the CLI exits 130 or 143 after the summary)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
received_signal: int | None = None


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it roughly doubles requests per core), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_blocking(engine: Engine) -> Totals:
    """Run `engine` on a fresh loop in this thread; Ctrl-C stops it cleanly with what ran."""

    async def main() -> Totals:
        loop = asyncio.get_running_loop()
        engine.stop = asyncio.Event()
        in_main = threading.current_thread() is threading.main_thread()
        before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} if in_main else {}

        def stop(sig: int) -> None:
            global received_signal
            received_signal = sig
            engine.stop.set()

        for sig in before:
            loop.add_signal_handler(sig, stop, sig)
        try:
            return await engine.run()
        finally:
            for sig, handler in before.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, handler)  # the caller's own handler, not the default

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main())
