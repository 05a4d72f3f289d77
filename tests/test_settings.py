import json

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


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        # `inf` froze readiness at its first answer; `nan` turned a time limit off
        ("READYKIT_HEALTH_CACHE_S", "inf", "Input should be a finite number"),
        ("READYKIT_REQUEST_TIMEOUT_S", "nan", "Input should be a finite number"),
        ("READYKIT_REQUEST_TIMEOUTS", '{"GET /slow": "nan"}', "Input should be a finite number"),
        ("READYKIT_PRIVACY_LINK_TTL_H", "inf", "Input should be a finite number"),
        # a per-route value is checked like the single setting it refines
        ("READYKIT_CACHE_ROUTES", '{"GET /": -1}', "[GET /] Input should be greater than 0"),
        ("READYKIT_CACHE_ROUTES", '{"GET /": "nan"}', "Input should be a finite number"),
        ("READYKIT_BODY_LIMITS", '{"POST /item": -5}', "[POST /item] Input should be greater"),
        ("READYKIT_REQUEST_TIMEOUTS", '{"GET /slow": 0}', "[GET /slow] Input should be greater"),
        ("READYKIT_RATE_LIMITS", '{"default": "0/minute"}', "'0/minute' admits no request"),
        # a CR/LF in a header the kit adds broke every response, `/health/live` included
        ("READYKIT_CONTENT_SECURITY_POLICY", "a\r\nSet-Cookie: x=y", "should match pattern"),
        ("READYKIT_REFERRER_POLICY", "no-referrer\n", "should match pattern"),
        ("READYKIT_SECURITY_HEADER_OVERRIDES", '{"GET /": {"Bad Header": "x"}}', "Bad Header"),
        ("READYKIT_SECURITY_HEADER_OVERRIDES", '{"GET /": {"X-A": "a\\r\\nb: c"}}', "[X-A]"),
        ("READYKIT_SECURITY_HEADER_OVERRIDES", '{"GET /": {"X-Note": "caf\u2019e"}}', "[X-Note]"),
        ("READYKIT_CORS_ALLOW_METHODS", '["FETCH ME"]', "should match pattern"),
        ("READYKIT_CORS_ALLOW_HEADERS", '["bad header"]', "should match pattern"),
        # a Redis URL's typo was accepted and the limits/cache silently failed open at use
        ("READYKIT_RATE_LIMIT_STORAGE", "redis://127.0.0.1:notaport/10", "not a Redis URL"),
        ("READYKIT_CACHE_URL", "redis://:pw-Zq81@127.0.0.1:6379/abc", "'abc' is not a number"),
    ],
)
def test_values_no_service_can_mean_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert str(refused.value).startswith((f"{variable}: ", f"{variable}["))
    assert says in str(refused.value)
    assert "pw-Zq81" not in str(refused.value)


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


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"audit_key": "too-short"}, "READYKIT_AUDIT_KEY: needs at least 16 characters"),
        ({"store_url": "sqlite://"}, "READYKIT_STORE_URL: 'sqlite://' names no file"),
        ({"store_url": "mongodb://db"}, "READYKIT_STORE_URL: unknown scheme 'mongodb'"),
        ({"cache_url": "memcached://x"}, "READYKIT_CACHE_URL: unknown scheme 'memcached'"),
        ({"cache_routes": {"rates": 60}}, "READYKIT_CACHE_ROUTES: key 'rates' is not a route"),
        (
            {"security_header_overrides": {"GET /x/{id:hex}": {}}},
            "READYKIT_SECURITY_HEADER_OVERRIDES: key 'GET /x/{id:hex}' uses unknown converter",
        ),
        ({"request_timeouts": {"GET": 5}}, "READYKIT_REQUEST_TIMEOUTS: key 'GET' is not a route"),
        ({"slow_request_routes": {"^/(": 5}}, "READYKIT_SLOW_REQUEST_ROUTES: '^/(' is not a"),
        ({"cors_allow_origins": ["example.com"]}, "READYKIT_CORS_ALLOW_ORIGINS: 'example.com'"),
        ({"trusted_proxies": ["10.0.0.0/33"]}, "READYKIT_TRUSTED_PROXIES: '10.0.0.0/33'"),
    ],
)
def test_each_section_validates_its_values_once_when_read(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, object], line: str
) -> None:
    """From code and from the environment alike: one line naming the variable."""
    with pytest.raises(ConfigurationError) as from_code:
        Settings(**values)  # type: ignore[arg-type]
    assert str(from_code.value).startswith(line)
    assert "\n" not in str(from_code.value)
    for name, value in values.items():
        monkeypatch.setenv(
            f"READYKIT_{name.upper()}", value if isinstance(value, str) else json.dumps(value)
        )
    with pytest.raises(ConfigurationError) as from_env:
        Settings()
    assert str(from_env.value) == str(from_code.value)


def test_a_secret_is_never_shown_in_its_error() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(audit_key="hunter2-short")  # type: ignore[arg-type]
    assert "hunter2" not in str(refused.value)


def test_a_section_is_what_a_feature_takes() -> None:
    """A feature's part can be built from its section alone, without the whole Settings."""
    from readykit.guards.config import SecurityHeadersConfig
    from readykit.guards.headers import SecurityHeaders
    from readykit.proxies import TrustedProxies

    config = SecurityHeadersConfig(referrer_policy="same-origin", hsts_max_age_s=0)
    stage = SecurityHeaders(config=config, proxies=TrustedProxies([]))
    assert stage.base[b"referrer-policy"] == b"same-origin"
    assert stage.hsts is None
