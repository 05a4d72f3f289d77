"""A configuration mistake is one line naming the variable: at startup, in the CLI, never a
traceback at import, and the server refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.cli import cli
from readykit.testing import asgi_request, lifespan

APPS = Path(__file__).parent / "apps"

CASES = [
    (
        "READYKIT_RATE_LIMITS",
        '{"default": "600/minute",}',  # the trailing comma of the field report
        "READYKIT_RATE_LIMITS: not valid JSON",
    ),
    (
        "READYKIT_RATE_LIMITS",
        '{"default": "5/minut"}',
        "READYKIT_RATE_LIMITS['default']: '5/minut'",
    ),
    ("READYKIT_TRUSTED_PROXIES", '["nope"]', "READYKIT_TRUSTED_PROXIES: 'nope' is not an IP"),
    ("READYKIT_MAX_BODY_BYTES", "-5", "READYKIT_MAX_BODY_BYTES: Input should be greater than 0"),
    ("READYKIT_FORWARDED_HEADER", "x-real-ip", "READYKIT_FORWARDED_HEADER: Input should be"),
]


@pytest.mark.parametrize(("name", "value", "line"), CASES)
def test_one_line_naming_the_variable_and_refusing_to_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    monkeypatch.setenv(name, value)
    kit = ReadyKit()  # no exception at import time
    assert kit.config_error is not None
    message = str(kit.config_error)
    assert message.startswith(line), message
    assert "\n" not in message

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never reached")

    wrapped = kit.wrap(app)  # type: ignore[arg-type]

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match=name):
            async with lifespan(wrapped):
                pass
        response = await asgi_request(wrapped, "GET", "/")
        assert response.status == 503
        assert value not in response.body.decode()  # nothing of the configuration leaks

    import asyncio

    asyncio.run(scenario())


def test_settings_from_code_say_the_same_line() -> None:
    with pytest.raises(ConfigurationError, match=r"^READYKIT_RATE_LIMITS: Input should be a valid"):
        Settings(rate_limits=["5/minute"])  # type: ignore[arg-type]


def test_example_is_shown_and_secrets_are_not() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(cache_routes={"GET /rates": "soon"})  # type: ignore[dict-item]
    assert "e.g. READYKIT_CACHE_ROUTES='{\"GET /rates\": 60}'" in str(caught.value)
    with pytest.raises(ConfigurationError) as secret:
        Settings(ops_token=12345)  # type: ignore[arg-type]
    assert "12345" not in str(secret.value)


def test_a_real_uvicorn_exits_with_the_line_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "READYKIT_RATE_LIMITS": '{"default": "600/minute",}'}
    env["READYKIT_STORE_URL"] = f"sqlite:///{tmp_path}/r.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--port",
            "0",
            "--app-dir",
            str(APPS),
            "ratelimit_app:app",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "READYKIT_RATE_LIMITS: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Application startup failed" in result.stderr


def test_the_cli_exits_2_with_the_same_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READYKIT_MAX_BODY_BYTES", "-5")
    result = CliRunner().invoke(cli, ["audit", "list"])
    assert result.exit_code == 2
    assert "READYKIT_MAX_BODY_BYTES: Input should be greater than 0" in result.output
    assert "Traceback" not in result.output


# the records' and privacy's files and store, as a real uvicorn starts them: each one line
# naming the variable, a non-zero exit, no traceback ({tmp}: the test's directory, {file}: a
# file where a directory should be)
UVICORN_CASES = [
    ("READYKIT_SPILL_PATH", "", "READYKIT_SPILL_PATH: '' names no file"),
    ("READYKIT_SPILL_PATH", ".", "READYKIT_SPILL_PATH: '.' names no file"),
    ("READYKIT_SPILL_PATH", "{file}/spill.jsonl", "READYKIT_SPILL_PATH: audit key file {file}/"),
    ("READYKIT_PRIVACY_KEY_PATH", "", "READYKIT_PRIVACY_KEY_PATH: '' names no file"),
    (
        "READYKIT_PRIVACY_KEY_PATH",
        "{file}/privacy.key",
        "READYKIT_PRIVACY_KEY_PATH: cannot create the privacy key file {file}/privacy.key",
    ),
    (
        "READYKIT_PRIVACY_KEY_PATH",
        "/proc/readykit-nope/k",
        "READYKIT_PRIVACY_KEY_PATH: cannot create the privacy key file /proc/readykit-nope/k",
    ),
    ("READYKIT_STORE_URL", "sqlite:///:memory:", "READYKIT_STORE_URL: 'sqlite:///:memory:' is a"),
    (
        "READYKIT_STORE_URL",
        "postgresql://postgres@127.0.0.1:notaport/x",
        "READYKIT_STORE_URL: the store URL 'postgresql://postgres@127.0.0.1:notaport/x' cannot",
    ),
    ("READYKIT_RECORDS_RETENTION_DAYS", "1e300", "READYKIT_RECORDS_RETENTION_DAYS: Input should"),
    ("READYKIT_RECORDS_FLUSH_S", "1e-9", "READYKIT_RECORDS_FLUSH_S: Input should be greater"),
    ("READYKIT_STALL_THRESHOLD_MS", "1e-9", "READYKIT_STALL_THRESHOLD_MS: Input should be gre"),
    ("READYKIT_SLOW_REQUEST_ROUTES", '{"^/r": -5}', "READYKIT_SLOW_REQUEST_ROUTES: [^/r] Input"),
    # at startup, opening the store: the same one line, with the reason as the store gave it
    (
        "READYKIT_STORE_URL",
        "sqlite:///{tmp}/passwd",
        "passwd (file is not a database)); fix READYK",
    ),
]


@pytest.mark.parametrize(("name", "value", "line"), UVICORN_CASES)
def test_a_real_uvicorn_refuses_bad_records_and_privacy_files_in_one_line(
    tmp_path: Path, name: str, value: str, line: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("a file where a directory should be")
    (tmp_path / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 64)
    env = {k: v for k, v in os.environ.items() if not k.startswith("READYKIT_")}
    env["READYKIT_STORE_URL"] = f"sqlite:///{tmp_path}/r.db"
    env[name] = value.replace("{tmp}", str(tmp_path)).replace("{file}", str(a_file))
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--port", "0", "--app-dir", str(APPS),
         "ratelimit_app:app"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr  # the kit's log lines go to stdout
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    said = [ln for ln in output.splitlines() if line.replace("{file}", str(a_file)) in ln]
    assert said, output
    assert name in said[0]
    assert "[REDACTED]" not in said[0]
