"""Reading commands find the store (--store, --app, READYKIT_STORE_URL) and never create one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from readykit.cli import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "list"],
        ["audit", "export"],
        ["audit", "verify"],
        ["apm", "list", "--kind", "stall"],
    ],
)
def test_a_missing_store_is_one_line_and_exit_2_and_stays_missing(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("READYKIT_STORE_URL", raising=False)
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert f"no store at {tmp_path}/.readykit/readykit.db (the default)" in result.output
    assert "--app module:kit" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / ".readykit").exists()  # nothing created


def test_the_store_of_an_app_is_found_from_its_kit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "service.db"
    (tmp_path / "myservice.py").write_text(
        "from readykit import ReadyKit, Settings\n"
        f"kit = ReadyKit(Settings(store_url='sqlite:///{store}', configure_logging=False))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    missing = CliRunner().invoke(cli, ["audit", "list", "--app", "myservice:kit"])
    assert missing.exit_code == 2
    assert f"no store at {store} (--app myservice:kit)" in missing.output
    sys.modules.pop("myservice", None)

    import asyncio

    from readykit.records.store import store_from_url

    async def create() -> None:
        s = store_from_url(f"sqlite:///{store}")
        await s.open()
        await s.close()

    asyncio.run(create())
    found = CliRunner().invoke(cli, ["audit", "list", "--app", "myservice:kit"])
    assert found.exit_code == 0, found.output
    sys.modules.pop("myservice", None)


READERS = [["audit", "list"], ["audit", "verify"], ["apm", "list", "--kind", "stall"]]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory: no key file or checkpoint under .readykit/ is found."""
    monkeypatch.chdir(tmp_path)


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("argv", READERS)
def test_an_unreachable_store_is_a_tool_failure_exit_3(argv: list[str]) -> None:
    """Not the exit 1 of a broken chain: nothing was checked."""
    from readykit.serve import free_port

    url = f"postgresql://u@127.0.0.1:{free_port()}/db"  # nothing listens there
    result = CliRunner().invoke(cli, [*argv, "--store", url])
    assert result.exit_code == 3, result.output
    assert f"cannot connect to the store {url}" in one_line(result.output)


def sqlite_tables(path: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]


@pytest.mark.parametrize("argv", READERS)
def test_a_sqlite_file_that_is_not_a_store_is_left_alone(argv: list[str], tmp_path: Path) -> None:
    import sqlite3

    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    unrelated, empty, text = tmp_path / "app.db", tmp_path / "empty.db", tmp_path / "notes.db"
    with sqlite3.connect(unrelated) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    empty.write_bytes(b"")
    text.write_text("not a database at all, just some notes\n" * 10)
    for path in (unrelated, empty):
        result = CliRunner().invoke(cli, [*argv, "--store", f"sqlite:///{path}"])
        assert result.exit_code == 3, result.output
        assert f"sqlite:///{path} is not a readykit store" in one_line(result.output)
    assert sqlite_tables(unrelated) == ["users"]  # no rk_* tables were created in it
    assert empty.read_bytes() == b""
    result = CliRunner().invoke(cli, [*argv, "--store", f"sqlite:///{text}"])
    assert result.exit_code == 3, result.output
    assert "file is not a database" in one_line(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "empty.db", "notes.db"]


def test_a_postgres_database_that_is_not_a_store_is_left_alone(postgres_url: str) -> None:
    import asyncio

    import asyncpg

    for argv in READERS:
        result = CliRunner().invoke(cli, [*argv, "--store", postgres_url])
        assert result.exit_code == 3, result.output
        assert f"{postgres_url} is not a readykit store" in one_line(result.output)

    async def tables() -> list[str]:
        conn = await asyncpg.connect(postgres_url)
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables"
                                                   " WHERE tablename LIKE 'rk_%'")]  # fmt: skip
        finally:
            await conn.close()

    assert asyncio.run(tables()) == []


@pytest.mark.parametrize(
    "url", ["postgresql://u@[::1/db", "postgresql://u:secret@127.0.0.1:port/db"]
)
def test_a_malformed_store_url_is_one_line(url: str) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", "--store", url])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # said, not raised
    assert "cannot be parsed" in one_line(result.output)
    assert "secret" not in result.output
