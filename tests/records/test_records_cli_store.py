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
