import pytest

from readykit import ConfigurationError, Settings


def test_env_prefix_and_secret_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READYKIT_OPS_TOKEN", "s3cret-token")
    monkeypatch.setenv("READYKIT_HEALTH_CACHE_S", "2.5")
    settings = Settings()
    assert settings.ops_token is not None
    assert settings.ops_token.get_secret_value() == "s3cret-token"
    assert settings.health_cache_s == 2.5
    assert "s3cret-token" not in repr(settings)


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READYKIT_HEALTH_CACHE_S", "-1")
    with pytest.raises(ConfigurationError, match="READYKIT_HEALTH_CACHE_S: Input should be"):
        Settings()


def test_unknown_readykit_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READYKIT_SOMETHING_NEW", "1")
    assert Settings().service_name == "app"


def test_a_missing_backend_package_names_the_extra() -> None:
    from readykit.errors import ConfigurationError, require_extra

    with pytest.raises(ConfigurationError, match=r"cache_url: .*pip install 'readykit\[redis\]'"):
        require_extra("readykit_no_such_module", "redis", "cache_url")
    require_extra("json", "none", "x")  # present: nothing happens


def test_docs_settings_table_is_current() -> None:
    """docs/settings.md lists every setting as the code has it (regenerate it if this fails)."""
    from pathlib import Path

    from readykit.settings import settings_table

    doc = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    assert doc.endswith(settings_table())
