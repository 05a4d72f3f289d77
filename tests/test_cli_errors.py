"""Every verb's mistakes and environment failures: one line, the exit code their class carries."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from readykit.check.client import CheckToolError
from readykit.cli import cli
from readykit.serve import ServerStartError, free_port, serve


def run(*args: str) -> tuple[int, str]:
    """Exit code and stderr+stdout; a traceback fails the test (catch_exceptions=False)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def refused() -> str:
    return f"http://127.0.0.1:{free_port()}/"


class _NoPost(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet: stderr is checked
        pass


@contextmanager
def answering_501() -> Iterator[str]:
    """A loopback HTTP server without a POST handler: every POST is answered 501."""
    server = HTTPServer(("127.0.0.1", 0), _NoPost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- check: 2 means "warnings only", so a missing extra is 3, named before any work ---


@pytest.mark.parametrize("module", ["jinja2", "scipy", "aiohttp"])
def test_check_without_its_extra_names_it_at_once_and_exits_3(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    code, output = run("check", refused(), "-q", "--html", "report.html")
    assert code == 3
    line = one_line(output)
    assert "pip install 'readykit[check]'" in line
    assert module in line
    assert "cannot reach" not in line  # refused before it tried the target


def test_check_without_a_url_names_the_demo_extra_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    code, output = run("check", "-q")
    assert code == 3
    assert "pip install 'readykit[demo]'" in one_line(output)


def test_a_child_server_that_exits_is_reported_with_its_output_at_once() -> None:
    child = [sys.executable, "-c", "print('needs readykit[demo]'); raise SystemExit(2)"]
    with pytest.raises(ServerStartError) as caught, serve(child, start_timeout=60):
        pass
    assert "exited with code 2" in str(caught.value)
    assert caught.value.output.strip() == "needs readykit[demo]"


def test_the_bundled_demo_failing_to_start_says_the_childs_last_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import readykit.serve
    from readykit.check.runner import bundled_demo

    said = "Error: the demo needs its extra: pip install 'readykit[demo]' (fastapi is missing)\n"

    @contextmanager
    def failing(*args: object, **kwargs: object) -> Iterator[None]:
        raise ServerStartError("python -c … did not listen (it exited with code 2)", said)
        yield

    monkeypatch.setattr(readykit.serve, "serve", failing)
    with pytest.raises(CheckToolError) as caught, bundled_demo():
        pass
    assert str(caught.value) == f"the bundled demo did not start: {said.strip()}"


def test_check_does_not_repeat_a_password_from_the_url() -> None:
    port = free_port()
    code, output = run("check", f"http://admin:hunter2pw@127.0.0.1:{port}/", "-q")
    assert code == 3
    assert "cannot reach" in one_line(output)
    assert "hunter2pw" not in output


# --- malformed URLs: one line naming the option, the verb's usage code ---

BAD_URLS = ["http://[::1", "http://127.0.0.1:99999/", "http://127.0.0.1:abc/"]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize(
    ("verb", "code"),
    [(("check",), 3), (("load",), 2), (("wait",), 2), (("job", "ping", "x", "--url"), 2)],
)
def test_a_malformed_url_is_one_line_naming_it(verb: tuple[str, ...], code: int, url: str) -> None:
    exit_code, output = run(*verb, url)
    assert exit_code == code
    line = one_line(output)
    assert ("--url" if "--url" in verb else "URL") in line


@pytest.mark.parametrize("option", ["--db", "--to"])
def test_backup_refuses_a_malformed_database_url_in_one_line(option: str, tmp_path: Path) -> None:
    url = "postgresql://u:secretpw@[::1/db"
    if option == "--db":
        args = ["backup", "create", "--db", url, "--repo", str(tmp_path / "repo")]
    else:
        args = ["backup", "restore", "--repo", str(tmp_path / "repo"), "latest", "--to", url]
    code, output = run(*args)
    assert code == 2
    line = one_line(output)
    assert option in line
    assert "secretpw" not in line


# --- output files: checked before the run, a disk error is one line, exit 3 ---


@pytest.mark.parametrize("option", ["--json", "--html", "--save-baseline"])
def test_load_refuses_an_output_in_a_missing_directory_before_the_run(
    option: str, tmp_path: Path
) -> None:
    code, output = run("load", refused(), option, str(tmp_path / "missing" / "x.json"))
    assert code == 3
    line = one_line(output)
    assert option in line
    assert "no directory" in line  # not "cannot reach": nothing ran


def test_check_refuses_an_output_in_a_missing_directory_before_the_run(tmp_path: Path) -> None:
    code, output = run("check", refused(), "-q", "--json", str(tmp_path / "missing" / "r.json"))
    assert code == 3
    assert "no directory" in one_line(output)


def test_deploy_files_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, output = run("deploy-files", "--out", str(tmp_path / "file" / "x"), "--defaults")
    assert code == 3
    assert "--out" in one_line(output)


# --- durations: one parser, errors name the option ---


@pytest.mark.parametrize(
    ("option", "value"), [("--timeout", "0"), ("--duration", "soon"), ("--warmup", "soon")]
)
def test_load_durations_name_their_option(option: str, value: str) -> None:
    code, output = run("load", refused(), option, value)
    assert code == 2
    assert one_line(output).startswith(f"Error: {option}:")


# --- job ping: an unreachable or failing service is the environment, not the user ---


def test_job_ping_to_a_refusing_port_is_a_tool_failure() -> None:
    code, output = run("job", "ping", "x", "--url", refused())
    assert code == 3
    assert "cannot reach" in one_line(output)


def test_job_ping_answered_501_is_a_tool_failure() -> None:
    with answering_501() as url:
        code, output = run("job", "ping", "x", "--url", url)
    assert code == 3
    assert "501" in one_line(output)


# --- privacy replay never creates the store it was pointed at ---


def test_privacy_replay_refuses_a_store_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READYKIT_PRIVACY_SECRET", "s3cret-for-tests")
    monkeypatch.setenv("READYKIT_CONFIGURE_LOGGING", "false")
    importlib.reload(importlib.import_module("apps.privacy_app"))
    typo = tmp_path / "typo.db"
    code, output = run(
        "privacy", "replay", "--app", "apps.privacy_app:kit", "--store", f"sqlite:///{typo}"
    )
    assert code == 2
    assert "no store at" in one_line(output)
    assert not typo.exists()


def test_job_ping_does_not_follow_a_redirect_with_the_token() -> None:
    """A service (or a proxy in front of it) answering the ping with a redirect to another
    host: urllib followed it and sent `Authorization: Bearer <ops token>` there, then reported
    success although no ping was recorded."""
    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("authorization"))
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET

    elsewhere = HTTPServer(("127.0.0.1", 0), Elsewhere)

    class Moved(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("location", f"http://127.0.0.1:{elsewhere.server_port}/steal")
            self.end_headers()

    service = HTTPServer(("127.0.0.1", 0), Moved)
    for server in (elsewhere, service):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{service.server_port}"
        code, output = run("job", "ping", "backup.nightly", "--url", url, "--token", "OPS-SECRET")
    finally:
        for server in (service, elsewhere):
            server.shutdown()
            server.server_close()
    assert seen == []
    assert code == 2
    assert "not followed" in one_line(output)


def test_ctrl_c_while_the_command_loads_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C lands while `readykit load` is still importing its verbs (~0.3 s after start)."""
    import types

    from readykit.__main__ import main

    loading = types.ModuleType("readykit.cli")

    def interrupted(name: str) -> object:
        raise KeyboardInterrupt

    loading.__getattr__ = interrupted  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "readykit.cli", loading)
    monkeypatch.setattr(sys, "argv", ["readykit", "load", "http://127.0.0.1:9/"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"
