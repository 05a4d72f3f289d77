"""The runtime install is slim and changes nothing in the host app; CLI verbs name their extra."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
# libraries that change other libraries' behaviour by being importable (structlog, Datasette
# and others switch to rich tracebacks when rich is installed), or are heavy and CLI-only
NOT_RUNTIME = ("rich", "scipy", "aiohttp", "hdrh", "zstandard", "yaml")


def test_runtime_dependencies_leave_out_the_cli_libraries() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]
    }
    assert names.isdisjoint({"rich", "scipy", "aiohttp", "hdrhistogram", "zstandard", "pyyaml"})
    assert "rich" in " ".join(project["optional-dependencies"]["cli"])


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
