"""Learn the target's endpoints: its OpenAPI document when there is one, else common paths."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from readykit.check.client import (
    Budget,
    BudgetExhausted,
    CheckToolError,
    RequestFailed,
    Response,
)
from readykit.check.not_judged import budget_line

OPENAPI_PATHS = ("/openapi.json", "/api/openapi.json", "/swagger.json", "/v3/api-docs")
COMMON_PATHS = ("/", "/api", "/api/v1", "/login", "/auth/login", "/api/login", "/token", "/users")
METHODS = ("get", "post", "put", "patch")
MAX_ENDPOINTS = 50
_AUTH_LIKE = re.compile(
    r"(?i)(^|/)(log-?in|sign-?in|auth|authenticate|token|oauth2?|sessions?|password|"
    r"register|sign-?up|otp|verify)(/|$|\.)"
)
_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True)
class Param:
    """A parameter and its declared JSON-schema type: `path`, `query`, a required property of
    a JSON request body (`body`) or a form field (`form`: crawled forms, form request bodies)."""

    name: str
    location: str
    type: str = "string"
    required: bool = False
    example: str | None = None  # from the document's example, enum or default


@dataclass(frozen=True)
class Endpoint:
    """One operation: method and path template, its parameters, whether it takes a JSON body."""

    method: str
    path: str
    params: tuple[Param, ...] = ()
    json_body: bool = False
    source: str = "openapi"  # where it was found: openapi, crawl, robots.txt, sitemap, option…

    @property
    def auth_like(self) -> bool:
        """Login, token, password and sign-up routes: the ones brute force goes after."""
        return bool(_AUTH_LIKE.search(self.path))

    @property
    def has_path_params(self) -> bool:
        return "{" in self.path

    def concrete(self, bad: bool = False) -> str:
        """The path with sample values (or, with `bad`, wrongly typed ones for typed params)."""
        types = {p.name: p.type for p in self.params if p.location == "path"}
        examples = {
            p.name: p.example for p in self.params if p.location == "path" and p.example is not None
        }

        def value(match: re.Match[str]) -> str:
            kind = types.get(match.group(1), "string")
            if kind in ("integer", "number") and bad:
                return "not-a-number"
            example = examples.get(match.group(1))
            if example is not None and not bad:
                return quote(example, safe="")
            return "1" if kind in ("integer", "number") else "readykit-check"

        return _PARAM.sub(value, self.path)


@dataclass
class Target:
    """What discovery learned: endpoints, where they came from, and how unknown paths answer."""

    endpoints: list[Endpoint] = field(default_factory=list)
    source: str = "common paths"
    not_found: Response | None = None
    probe_token: str = field(default_factory=lambda: secrets.token_hex(6))
    rate_limited: str | None = None  # why discovery stopped: the target answered it with 429

    @property
    def catch_all(self) -> bool:
        """True if an unknown path answers 2xx: status codes alone prove nothing there."""
        return self.not_found is not None and 200 <= self.not_found.status < 300

    def unknown_path(self) -> str:
        return f"/readykit-check-{self.probe_token}"

    def like_unknown(self, resp: Response) -> bool:
        """True if `resp` looks like the answer to a path that does not exist."""
        base = self.not_found
        if base is None:
            return resp.status == 404
        if resp.status != base.status:
            return False
        strip = re.compile(rb"/[^\s\"'<>]*")  # unknown-path answers often echo the path
        return strip.sub(b"", resp.body) == strip.sub(b"", base.body)

    def gets(self, limit: int = 10) -> list[Endpoint]:
        """GET endpoints without required query parameters, parameterless paths first."""
        plain = [
            e
            for e in self.endpoints
            if e.method == "GET" and not any(p.required and p.location == "query" for p in e.params)
        ]
        plain.sort(key=lambda e: (e.has_path_params, e.path.count("/"), e.path))
        return plain[:limit]


def _schema_type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "string"
    if isinstance(schema.get("type"), str):
        return str(schema["type"])
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key) or ():
            kind = _schema_type(option)
            if kind not in ("string", "null"):
                return kind
    return "string"


def _example(param: dict[str, Any]) -> str | None:
    """A value the document itself offers for a parameter: example, enum, default."""
    schema = param.get("schema") if isinstance(param.get("schema"), dict) else {}
    assert isinstance(schema, dict)
    for holder in (param, schema):
        if "example" in holder and isinstance(holder["example"], str | int | float):
            return str(holder["example"])
        examples = holder.get("examples")
        if isinstance(examples, dict):
            for ex in examples.values():
                if isinstance(ex, dict) and isinstance(ex.get("value"), str | int | float):
                    return str(ex["value"])
        elif isinstance(examples, list) and examples and isinstance(examples[0], str | int):
            return str(examples[0])
        enum = holder.get("enum")
        if isinstance(enum, list) and enum and isinstance(enum[0], str | int):
            return str(enum[0])
        if isinstance(holder.get("default"), str | int) and not isinstance(holder["default"], bool):
            return str(holder["default"])
    return None


def _resolve(doc: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    """`schema` with a local `$ref` (`#/components/schemas/X`) followed, a few levels deep."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < 8:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {}
        node: Any = doc
        for part in ref[2:].split("/"):
            node = (
                node.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(node, dict)
                else None
            )
        schema, depth = node, depth + 1
    return schema if isinstance(schema, dict) else {}


def _body_params(doc: dict[str, Any], op: dict[str, Any]) -> tuple[Param, ...]:
    """The required properties of an operation's JSON (`body`) or form (`form`) request body."""
    body = _resolve(doc, op.get("requestBody"))
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    assert isinstance(content, dict)
    for media, location in (("json", "body"), ("x-www-form-urlencoded", "form")):
        for kind, holder in content.items():
            if media not in str(kind) or not isinstance(holder, dict):
                continue
            schema = _resolve(doc, holder.get("schema"))
            parts = [schema, *(_resolve(doc, s) for s in schema.get("allOf") or ())]
            params: list[Param] = []
            for part in parts:
                props = part.get("properties") if isinstance(part.get("properties"), dict) else {}
                assert isinstance(props, dict)
                for name in part.get("required") or ():
                    if isinstance(name, str) and name not in {p.name for p in params}:
                        prop = _resolve(doc, props.get(name))
                        params.append(
                            Param(name, location, _schema_type(prop), True, _example(prop))
                        )
            if params:
                return tuple(params)
    return ()


def endpoints_from_openapi(doc: Any) -> list[Endpoint]:
    """The operations of an OpenAPI 3 (or Swagger 2) document; DELETE and others are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise ValueError("no `paths` object")
    prefix = ""
    servers = doc.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        url = str(servers[0].get("url", ""))
        if url.startswith("/") and not url.startswith("//"):  # `//host` is another host
            prefix = url.rstrip("/")
    elif isinstance(doc.get("basePath"), str) and not doc["basePath"].startswith("//"):
        prefix = doc["basePath"].rstrip("/")
    found: list[Endpoint] = []
    for path, item in doc["paths"].items():
        if not isinstance(item, dict) or not isinstance(path, str) or not path.startswith("/"):
            continue
        if (prefix + path).startswith("//"):
            continue  # a path on another host, not on the target
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            params = []
            for p in [*shared, *(op.get("parameters") or [])]:
                if isinstance(p, dict) and p.get("in") in ("path", "query") and "name" in p:
                    kind = _schema_type(p.get("schema", p))
                    params.append(
                        Param(str(p["name"]), p["in"], kind, bool(p.get("required")), _example(p))
                    )
            params += _body_params(doc, op)
            content = _resolve(doc, op.get("requestBody")).get("content") or {}
            json_body = any("json" in str(t) for t in content) or any(
                isinstance(p, dict) and p.get("in") == "body" for p in op.get("parameters") or []
            )
            found.append(Endpoint(method.upper(), prefix + path, tuple(params), json_body))
    return found[:MAX_ENDPOINTS]


def load_openapi_file(path: Path) -> list[Endpoint]:
    """Endpoints from a local OpenAPI JSON or YAML file (`--openapi FILE`)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CheckToolError(f"cannot read the OpenAPI file {path}: {exc.strerror}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
        return endpoints_from_openapi(doc)
    except (ValueError, ImportError) as exc:
        raise CheckToolError(f"{path} is not an OpenAPI document: {exc}") from exc


def parse_endpoint(spec: str) -> Endpoint:
    """`GET /items/{id}` (from `--endpoint`) as an endpoint; ValueError when malformed."""
    parts = spec.split()
    if len(parts) != 2 or parts[0].upper() not in ("GET", "POST", "PUT", "PATCH", "HEAD"):
        raise ValueError(f"{spec!r} is not 'METHOD /path' (GET, POST, PUT or PATCH)")
    method, path = parts[0].upper(), parts[1]
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"{spec!r}: the path must start with a single /")
    path, _, query = path.partition("?")
    params = [Param(name, "path", required=True) for name in _PARAM.findall(path)]
    params += [Param(q.split("=")[0], "query") for q in query.split("&") if q.split("=")[0]]
    return Endpoint(method, path, tuple(params), method != "GET", source="--endpoint")


async def discover(
    budget: Budget, openapi_file: Path | None = None, extra: tuple[Endpoint, ...] = ()
) -> Target:
    """Find the endpoints and record how an unknown path answers.

    OpenAPI when there is one; otherwise a bounded same-origin crawl (`readykit.check.crawl`)
    plus a few common paths; `extra` (from `--endpoint`) always added.
    """
    target = Target()
    try:
        await _discover(budget, openapi_file, target)
    except CheckToolError:
        raise  # the user's `--openapi` file: the check cannot run as asked
    except BudgetExhausted:
        target.source = "discovery stopped at its budget"  # a slow target: probes go on
    except Exception as exc:
        # a target's answer must not stop the check: the probes run on what was found so far
        # (the unknown path's answer included)
        target.source = f"discovery stopped on an answer it could not handle ({type(exc).__name__})"
    known = {(e.method, e.path) for e in target.endpoints}
    target.endpoints += [e for e in extra if (e.method, e.path) not in known]
    return target


async def _discover(budget: Budget, openapi_file: Path | None, target: Target) -> Target:
    from readykit.check.crawl import crawl

    try:
        target.not_found = await budget.get(target.unknown_path())
    except RequestFailed:
        target.not_found = None
    if target.not_found is not None and target.not_found.status == 429:
        target.not_found = None  # the limit's answer, not how an unknown path answers
    if openapi_file is not None:
        target.endpoints = load_openapi_file(openapi_file)
        target.source = str(openapi_file)
        return target
    for path in OPENAPI_PATHS:
        resp = await budget.try_request("GET", path, read_limit=4 * 1024 * 1024)
        if resp is not None and resp.status == 429:
            # a crawl would only collect more 429s and call what it found the service's API
            return _limited(target, budget)
        if resp is None or resp.status != 200:
            continue
        try:
            target.endpoints = endpoints_from_openapi(resp.json())
        except ValueError:
            continue
        target.source = path
        return target
    target.endpoints = await crawl(budget, target)
    target.source = "crawl"
    if budget.mostly_limited:
        return _limited(target, budget)
    seen = {(e.method, e.path) for e in target.endpoints}
    for path in COMMON_PATHS:
        if not budget.has() or len(target.endpoints) >= MAX_ENDPOINTS:
            break
        if ("GET", path) in seen or ("POST", path) in seen:
            continue
        resp = await budget.try_request("GET", path)
        if resp is not None and resp.status == 429:
            return _limited(target, budget)
        if resp is None or target.like_unknown(resp) or resp.status == 404:
            continue
        if resp.status == 405:
            allow = (resp.header("allow") or "POST").upper()
            if "POST" in allow:
                target.endpoints.append(
                    Endpoint("POST", path, json_body=True, source="common paths")
                )
            continue
        target.endpoints.append(Endpoint("GET", path, source="common paths"))
    return target


def _limited(target: Target, budget: Budget) -> Target:
    """`target` as far as discovery got before the target rate-limited it."""
    target.rate_limited = budget_line(budget)
    target.source = "discovery rate-limited (429)"
    return target
