"""What each virtual user does: one URL, a YAML file of weighted flows, or a Python file.

Errors in a scenario file name the file, the line and what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml

from readykit.clitools import check_url
from readykit.errors import ReadykitError
from readykit.load.units import BadDuration, parse_duration

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_VAR = re.compile(r"\$\{(\w+)\}")


class ScenarioError(ReadykitError):
    """A scenario file is wrong; the message is `file:line: what is wrong`."""


@dataclass(frozen=True)
class Capture:
    """Where to take a value from in a response: a JSON path, a header or a regex group."""

    source: str  # "json" | "header" | "regex"
    expr: str


@dataclass(frozen=True)
class Check:
    """What a response must satisfy; without `status`, any status below 400 passes."""

    status: tuple[int, ...] = ()
    contains: str | None = None
    json: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One request of a flow."""

    name: str
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    body: str | None = None
    captures: Mapping[str, Capture] = field(default_factory=dict)
    check: Check = field(default_factory=Check)
    think_s: float = 0.0


@dataclass(frozen=True)
class Flow:
    """A named sequence of steps, picked in proportion to its weight."""

    name: str
    weight: float
    steps: tuple[Step, ...]


ScriptFn = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: flows (URL and YAML) or a script function (Python)."""

    kind: str  # "url" | "yaml" | "python"
    source: str
    base_url: str
    fingerprint: str
    flows: tuple[Flow, ...] = ()
    script: ScriptFn | None = None

    @property
    def single_get(self) -> bool:
        """True for the plain-URL case, which the engine runs on a fast path."""
        return self.kind == "url"


def from_url(url: str) -> Scenario:
    """The simple case: every user GETs `url` again and again."""
    try:
        parts = check_url(url, schemes=("http", "https"))
    except ValueError as exc:
        raise ScenarioError(f"bad URL {exc}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    step = Step(name=f"GET {path}", method="GET", path=path)
    return Scenario(
        kind="url",
        source=url,
        base_url=f"{parts.scheme}://{parts.netloc}",
        fingerprint=f"GET {url}",
        flows=(Flow("default", 1.0, (step,)),),
    )


def load(path: str | Path, base_url: str | None = None) -> Scenario:
    """A scenario from a `.yaml`/`.yml` or `.py` file; `base_url` overrides the file's own."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read the scenario file ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(f"{p}:{line}: not UTF-8 text (byte {exc.start})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as a text-mode read had it
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if p.suffix == ".py":
        if not base_url:
            raise ScenarioError(f"{p}:1: a Python scenario needs the target URL to be given")
        fn = _load_python(p)
        fingerprint = f"python {p.name} {digest}"
        return Scenario("python", str(p), _base(base_url, p), fingerprint, script=fn)
    if p.suffix not in (".yaml", ".yml"):
        raise ScenarioError(f"{p}:1: a scenario file ends in .yaml, .yml or .py")
    file_base, flows = _parse_yaml(p, text)
    base = base_url or file_base
    if not base:
        raise ScenarioError(f"{p}:1: no base_url in the file and no URL on the command line")
    return Scenario("yaml", str(p), _base(base, p), f"yaml {p.name} {digest}", flows=flows)


def _base(url: str, p: Path) -> str:
    try:
        parts = check_url(url, schemes=("http", "https"))
    except ValueError as exc:
        raise ScenarioError(f"{p}:1: bad base URL {exc}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def step_url(base_url: str, path: str) -> str:
    """The absolute URL of a step's path (absolute URLs in a step are kept)."""
    if path.startswith(("http://", "https://")):
        return path
    return urljoin(base_url + "/", path.lstrip("/"))


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """`${name}` replaced by captured values in strings, recursively through lists and dicts."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def missing_variables(value: Any, variables: Mapping[str, str]) -> list[str]:
    """Names used as `${name}` in `value` that no earlier step captured."""
    text = json.dumps(value) if not isinstance(value, str) else value
    return [n for n in _VAR.findall(text) if n not in variables]


def capture(spec: Capture, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """The captured value as text, or None when the response does not have it."""
    if spec.source == "header":
        return headers.get(spec.expr)
    text = body.decode("utf-8", "replace")
    if spec.source == "regex":
        m = re.search(spec.expr, text)
        if m is None:
            return None
        return m.group(1) if m.groups() else m.group(0)
    try:
        found = json_path(json.loads(text), spec.expr)
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return found if isinstance(found, str) else json.dumps(found)


def json_path(doc: Any, path: str) -> Any:
    """`a.b.0.c` looked up in a JSON document (integers index lists)."""
    for part in path.split(".") if path else ():
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def check_failure(check: Check, status: int, body: bytes) -> str | None:
    """The error kind for a response that fails `check`, or None when it passes."""
    if check.status:
        if status not in check.status:
            return f"http_{status}" if status >= 400 else "check_status"
    elif status >= 400:
        return f"http_{status}"
    if check.contains is not None and check.contains.encode() not in body:
        return "check_contains"
    if check.json:
        try:
            doc = json.loads(body)
            for path, expected in check.json.items():
                if json_path(doc, path) != expected:
                    return "check_json"
        except (ValueError, KeyError, IndexError, TypeError):
            return "check_json"
    return None


# --- YAML --------------------------------------------------------------------------------------


class _Doc:
    """Validation over a composed YAML node tree, so every error carries its line."""

    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader

    def fail(self, node: yaml.Node, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.fail(key, f"{what}: keys must be plain names")
            out[str(key.value)] = value
        return out

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def string(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a string")
        return str(node.value)

    def unknown(self, node: yaml.Node, allowed: set[str], what: str) -> None:
        """Fail on the first key of mapping `node` that is not in `allowed`."""
        for key, _ in node.value:
            if key.value not in allowed:
                names = ", ".join(sorted(allowed))
                raise self.fail(key, f"unknown key {key.value!r} in {what} (allowed: {names})")


def _parse_yaml(p: Path, text: str) -> tuple[str | None, tuple[Flow, ...]]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError(f"{p}:{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{p}:1: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if root is None:
        raise ScenarioError(f"{p}:1: the file is empty; it needs a `flows:` list")
    doc = _Doc(p, loader)
    top = doc.mapping(root, "the scenario")
    doc.unknown(root, {"base_url", "flows"}, "the scenario")
    base = doc.string(top["base_url"], "base_url") if "base_url" in top else None
    if "flows" not in top:
        raise doc.fail(root, "missing `flows:` (a list of flows, each with `steps:`)")
    flows_node = top["flows"]
    if not isinstance(flows_node, yaml.SequenceNode) or not flows_node.value:
        raise doc.fail(flows_node, "`flows` must be a non-empty list")
    flows = tuple(_flow(doc, node, i) for i, node in enumerate(flows_node.value))
    return base, flows


def _flow(doc: _Doc, node: yaml.Node, index: int) -> Flow:
    keys = doc.mapping(node, "a flow")
    doc.unknown(node, {"name", "weight", "steps"}, "a flow")
    name = doc.string(keys["name"], "name") if "name" in keys else f"flow{index + 1}"
    weight = 1.0
    if "weight" in keys:
        w = doc.value(keys["weight"])
        if isinstance(w, bool) or not isinstance(w, int | float) or w <= 0:
            raise doc.fail(keys["weight"], f"weight must be a positive number, not {w!r}")
        weight = float(w)
    steps_node = keys.get("steps")
    if not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
        raise doc.fail(steps_node or node, f"flow {name!r} needs a non-empty `steps:` list")
    steps = tuple(_step(doc, s) for s in steps_node.value)
    captured: set[str] = set()
    for step, s_node in zip(steps, steps_node.value, strict=True):
        used = missing_variables([step.path, dict(step.headers), step.json, step.body], {})
        for var in used:
            if var not in captured:
                raise doc.fail(s_node, f"${{{var}}} is used before any step captures it")
        captured.update(step.captures)
    return Flow(name, weight, steps)


_STEP_KEYS = {"name", "method", "path", "headers", "json", "body", "capture", "check", "think"}


def _step(doc: _Doc, node: yaml.Node) -> Step:
    keys = doc.mapping(node, "a step")
    shorthand = [k for k in keys if k.upper() in METHODS]
    doc.unknown(node, _STEP_KEYS | set(shorthand), "a step")
    if len(shorthand) > 1 or (shorthand and ("method" in keys or "path" in keys)):
        raise doc.fail(node, "give either `get: /path` or `method:` and `path:`, once")
    if shorthand:
        method, path = shorthand[0].upper(), doc.string(keys[shorthand[0]], "path")
    else:
        if "path" not in keys:
            raise doc.fail(node, "a step needs `path:` (or the shorthand `get: /path`)")
        path = doc.string(keys["path"], "path")
        method = doc.string(keys["method"], "method").upper() if "method" in keys else "GET"
        if method not in METHODS:
            raise doc.fail(keys["method"], f"unknown method {method!r}")
    headers: dict[str, str] = {}
    if "headers" in keys:
        for k, v in doc.mapping(keys["headers"], "headers").items():
            headers[k] = doc.string(v, f"header {k}")
    if "json" in keys and "body" in keys:
        raise doc.fail(keys["body"], "give `json:` or `body:`, not both")
    body = doc.string(keys["body"], "body") if "body" in keys else None
    think = 0.0
    if "think" in keys:
        try:
            think = parse_duration(doc.string(keys["think"], "think"), what="think")
        except BadDuration as exc:
            raise doc.fail(keys["think"], str(exc)) from exc
    return Step(
        name=doc.string(keys["name"], "name") if "name" in keys else f"{method} {path}",
        method=method,
        path=path,
        headers=headers,
        json=doc.value(keys["json"]) if "json" in keys else None,
        body=body,
        captures=_captures(doc, keys["capture"]) if "capture" in keys else {},
        check=_check(doc, keys["check"]) if "check" in keys else Check(),
        think_s=think,
    )


def _captures(doc: _Doc, node: yaml.Node) -> dict[str, Capture]:
    out: dict[str, Capture] = {}
    for name, spec in doc.mapping(node, "capture").items():
        keys = doc.mapping(spec, f"capture {name}")
        doc.unknown(spec, {"json", "header", "regex"}, f"capture {name}")
        if len(keys) != 1:
            raise doc.fail(spec, f"capture {name}: give exactly one of json, header, regex")
        source, expr_node = next(iter(keys.items()))
        expr = doc.string(expr_node, f"capture {name}")
        if source == "regex":
            try:
                re.compile(expr)
            except re.error as exc:
                raise doc.fail(expr_node, f"capture {name}: bad regex: {exc}") from exc
        out[name] = Capture(source, expr)
    return out


def _check(doc: _Doc, node: yaml.Node) -> Check:
    keys = doc.mapping(node, "check")
    doc.unknown(node, {"status", "contains", "json"}, "check")
    status: tuple[int, ...] = ()
    if "status" in keys:
        raw = doc.value(keys["status"])
        codes = raw if isinstance(raw, list) else [raw]
        if not codes or not all(isinstance(c, int) and 100 <= c <= 599 for c in codes):
            raise doc.fail(keys["status"], f"status must be an HTTP status or a list, not {raw!r}")
        status = tuple(codes)
    expected = doc.value(keys["json"]) if "json" in keys else {}
    if not isinstance(expected, dict):
        raise doc.fail(keys["json"], "check json must map paths to expected values")
    contains = doc.string(keys["contains"], "contains") if "contains" in keys else None
    return Check(status=status, contains=contains, json=expected)


# --- Python ------------------------------------------------------------------------------------


def _load_python(p: Path) -> ScriptFn:
    name = f"readykit_load_scenario_{hashlib.sha256(str(p).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{p}:1: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ScenarioError(f"{p}:{exc.lineno or 1}: syntax error: {exc.msg}") from exc
    except (Exception, SystemExit) as exc:  # a scenario calling sys.exit() is an error too
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(p)]
        line = frames[-1].lineno if frames else 1
        raise ScenarioError(f"{p}:{line}: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, "scenario", None)
    if fn is None or not inspect.iscoroutinefunction(fn):
        raise ScenarioError(f"{p}:1: define `async def scenario(user): ...`")
    return fn  # type: ignore[no-any-return]
