"""The runtime install is slim and changes nothing in the host app; CLI verbs name their extra."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest

from readykit import ReadyKit, Settings
from readykit.errors import EXTRA_OF
from readykit.testing import asgi_request, lifespan

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# what `pip install readykit` brings: the middleware and its default features, nothing more
# (docs/decisions.md, issue 17, says why each is here)
RUNTIME = [
    "cryptography",
    "limits",
    "prometheus-client",
    "pydantic",
    "pydantic-settings",
    "structlog",
]
# libraries that change other libraries' behaviour by being importable (structlog, Datasette
# and others switch to rich tracebacks when rich is installed), or are heavy and CLI-only
NOT_RUNTIME = ("rich", "scipy", "aiohttp", "hdrh", "zstandard", "yaml", "click", "jinja2")
# what neither `import readykit` nor a default kit wrapping an app may import: the CLI, its
# libraries, and what only a feature that is off (rate limits, Redis, PostgreSQL) needs
NEVER_IMPORTED = (
    *NOT_RUNTIME, "limits", "sqlalchemy", "asyncpg", "redis", "readykit.cli", "readykit.clitools",
    "readykit.load", "readykit.check", "readykit.backup", "readykit.deploy", "readykit.demo",
)  # fmt: skip
# what the default kit needs, imported when the kit is built or starts, not by `import readykit`
# (structlog imports rich where rich is installed: the default access log builds a structlog
# logger when the kit is built, readykit.logging.access)
IMPORTED_BY_THE_KIT = ("structlog", "rich", "cryptography", "sqlite3")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    return _normal(re.split(r"[<>=\[; ]", requirement, maxsplit=1)[0])


def _extra(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The distributions an extra brings, following `readykit[...]` to other extras."""
    names: set[str] = set()
    for requirement in PROJECT["optional-dependencies"][name]:
        if _name(requirement) == "readykit":
            for inner in re.findall(r"\[(.*)\]", requirement)[0].split(","):
                if inner not in seen:
                    names |= _extra(inner, seen | {name})
        else:
            names.add(_name(requirement))
    return names


def test_the_runtime_dependencies_are_these() -> None:
    assert sorted(_name(r) for r in PROJECT["dependencies"]) == RUNTIME


def test_each_extra_named_for_a_missing_module_brings_it() -> None:
    distributions = packages_distributions()
    for module, extra in EXTRA_OF.items():
        assert extra in PROJECT["optional-dependencies"], (module, extra)
        (distribution,) = {_normal(d) for d in distributions[module]}
        assert distribution in _extra(extra), (module, extra)


def test_all_brings_every_extra_and_dev_brings_all() -> None:
    extras = set(PROJECT["optional-dependencies"]) - {"all", "dev", "bench"}
    assert extras <= {_name(e) for e in extras}  # plain names
    everything = set().union(*(_extra(e) for e in extras))
    assert _extra("all") == everything
    assert everything <= _extra("dev")
    assert {"click", "jinja2"}.isdisjoint(_name(r) for r in PROJECT["dependencies"])


def test_neither_the_import_nor_a_default_kit_imports_the_cli_or_what_is_off(
    tmp_path: Path,
) -> None:
    """In a fresh interpreter, in an empty directory (the default store is created there)."""
    code = (
        "import json, sys\n"
        "import readykit\n"
        "imported = sorted(sys.modules)\n"
        "async def app(scope, receive, send): pass\n"
        "readykit.ReadyKit().wrap(app)\n"
        "print(json.dumps([imported, sorted(sys.modules)]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    by_import, by_kit = (set(names) for names in json.loads(run.stdout))

    def loaded(names: set[str], wanted: tuple[str, ...]) -> list[str]:
        return [w for w in wanted if any(n == w or n.startswith(w + ".") for n in names)]

    assert loaded(by_import, NEVER_IMPORTED + IMPORTED_BY_THE_KIT) == []
    assert loaded(by_kit, tuple(m for m in NEVER_IMPORTED if m not in IMPORTED_BY_THE_KIT)) == []


def test_a_kit_serves_without_any_of_them() -> None:
    """As if not installed (None in sys.modules makes their import fail): the kit still works."""
    code = (
        "import sys, asyncio\n"
        f"for m in {NOT_RUNTIME!r}: sys.modules[m] = None\n"
        "from readykit import ReadyKit, Settings\n"
        "from readykit.testing import asgi_request, lifespan\n"
        "kit = ReadyKit(Settings(records=False, log_format='console'))\n"
        "async def app(scope, receive, send): pass\n"
        "async def main():\n"
        "    wrapped = kit.wrap(app)\n"
        "    async with lifespan(wrapped):\n"
        "        print((await asgi_request(wrapped, 'GET', '/health/ready')).status)\n"
        "asyncio.run(main())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "200" in run.stdout.splitlines()


def test_a_verb_without_its_extra_names_it_in_one_line() -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None; sys.modules['hdrh'] = None;"
        "from readykit.cli import main; main(['load', 'http://127.0.0.1:9/', '--users', '1',"
        " '--duration', '1s'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'readykit[load]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_command_without_the_cli_extra_names_it_in_one_line() -> None:
    code = "import sys; sys.modules['click'] = None; from readykit.__main__ import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "readykit: needs the 'click' package; pip install 'readykit[cli]'\n"


@pytest.mark.anyio
async def test_without_the_dashboard_extra_pages_name_it_and_the_json_api_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)  # as if not installed
    monkeypatch.chdir(tmp_path)  # the default store and keys are created here
    token = "ops-secret-token"
    kit = ReadyKit(Settings(configure_logging=False, access_log=False, ops_token=token))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the kit answers /ops itself")

    wrapped = kit.wrap(app)
    bearer = [("Authorization", f"Bearer {token}")]
    async with lifespan(wrapped):
        page = await asgi_request(wrapped, "GET", "/ops", headers=bearer)
        login = await asgi_request(wrapped, "GET", "/ops/login")
        api = await asgi_request(wrapped, "GET", "/ops/api/overview", headers=bearer)
        jobs_page = await asgi_request(wrapped, "GET", "/ops/jobs", headers=bearer)
        jobs_api = await asgi_request(wrapped, "GET", "/ops/api/jobs", headers=bearer)
    assert page.status == 501
    assert jobs_page.status == 501  # the jobs page too, not a 500 with a traceback
    assert jobs_page.json()["detail"] == page.json()["detail"]
    assert jobs_api.status == 200
    assert "pip install 'readykit[dashboard]'" in page.json()["detail"]
    assert login.status == 501
    assert api.status == 200
    assert "health" in api.json()
    warnings = [r.getMessage() for r in caplog.records if r.name == "readykit.ops"]
    assert warnings == [page.json()["detail"]]
