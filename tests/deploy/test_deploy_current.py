"""The committed deploy/ folder is what `readykit deploy-files --defaults` writes today."""

from __future__ import annotations

from pathlib import Path

from readykit.deploy import default_settings, render

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_committed_deploy_files_are_current() -> None:
    """Regenerate with `readykit deploy-files --defaults --out deploy` if this fails."""
    expected = render(default_settings())
    committed = {
        p.relative_to(DEPLOY).as_posix(): p.read_text(encoding="utf-8")
        for p in DEPLOY.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert sorted(committed) == sorted(expected)
    for name, text in expected.items():
        assert committed[name] == text, f"deploy/{name} is stale"
