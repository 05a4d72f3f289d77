"""Redaction rules, by example and by property: generated secrets never reach the output."""

import json
import logging
import string
from io import StringIO
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readykit import Settings
from readykit.logging import Redactor, configure_logging, redact_text
from readykit.logging.redact import MARK, Remembered, luhn_valid, redact_path

R = Redactor()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "dbPassword",
        "X-Api-Key",
        "apiKey",
        "Set-Cookie",
        "cookie",
        "Authorization",
        "client_secret",
        "refresh_token",
        "private_key",
        "card_number",
        "CVV",
        "ssn",
        "sessionid",
        "session_id",
        "AWS_SECRET_ACCESS_KEY",
        # short, plural and *_key names a review found leaking
        "DB_PASS",
        "pass",
        "pw",
        "passwords",
        "secrets",
        "api_keys",
        "encryption_key",
        "signing_key",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert R.is_sensitive_key(key)
    assert R.redact({key: "value-1"}) == {key: MARK}


@pytest.mark.parametrize(
    "key",
    [
        "tokens_used",
        "company",
        "span_id",
        "author",
        "passenger",
        "secretary_name",
        "path",
        "prompt_tokens",
        "bypass",
        "compass",
        "passport",
        "cache_key",
        "primary_key",
        "key_id",
    ],
)
def test_innocent_keys_are_kept(key: str) -> None:
    assert not R.is_sensitive_key(key)
    assert R.redact({key: "value-1"}) == {key: "value-1"}


def test_extra_keys_extend_the_rules() -> None:
    assert Redactor(["national_id"]).redact({"nationalId": "x"}) == {"nationalId": MARK}


def test_extra_keys_apply_to_pairs_inside_text_too() -> None:
    """READYKIT_REDACT_KEYS: `national_id=...` inside a message, a detail or a stored text."""
    custom = Redactor(["national_id", "badge"])
    text = "lookup failed for national_id=LEAK123 badge: B-77 user=bob"
    assert custom.text(text) == f"lookup failed for national_id={MARK} badge: {MARK} user=bob"
    assert custom.redact({"note": text})["note"] == custom.text(text)
    assert Redactor().text(text) == text  # the built-in rules alone know neither key


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.DEF-123_456~xyz", "abc.DEF-123_456~xyz"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4", "eyJhbGciOiJIUzI1NiJ9"),
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("paid with 4111 1111 1111 1111 today", "4111 1111 1111 1111"),
        ("paid with 4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("amex 3782 822463 10005.", "822463"),
        ("card=5555555555554444", "5555555555554444"),
        ("payload {'Authorization': 'abc0000000'}", "abc0000000"),
        ("?session_id=s-9f8e7d6c&x=1", "s-9f8e7d6c"),
        ("postgresql://app:s3cr3t@db:5432/x failed", "s3cr3t"),
        ("redis://:hunter22@cache:6379/0", "hunter22"),
        ("login failed password=hunter2 for x", "hunter2"),
        ('{"api_key": "k-123456"}', "k-123456"),
    ],
)
def test_value_patterns(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert MARK in out


def test_ordinary_text_is_kept() -> None:
    for text in [
        "order 1234567812345678 shipped",  # 16 digits failing Luhn
        "GET /quotes/42 took 12.5 ms",
        "2026-11-23 01:02:03",
        "https://example.org/path?page=2",
        "token bucket refilled",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "trace 0af7651916cd43dd8448eb211c80319c4111111111111111ab",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
        "/api/v1/customers/12345/orders?page=2&sort=name",
        "Basic information about the order",  # words after basic/token/bearer, no credential
        "token validation failed for this request",
        "GET http://localhost:5173/@vite/client",  # a port and a path, no user:password@
        "http://127.0.0.1:8000/invite?email=bob@example.com",
    ]:
        assert redact_text(text) == text


def test_a_pgp_private_key_block_is_redacted_whole() -> None:
    block = (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0LEAKCANARYxyz\n=abcd\n"
        "-----END PGP PRIVATE KEY BLOCK-----"
    )
    assert redact_text(f"key: {block} end") == f"key: {MARK} end"


def test_millisecond_timestamps_and_ids_starting_1_are_no_card() -> None:
    """One in ten 13-digit numbers passes Luhn; epoch milliseconds (17...) and order ids that
    start with 1 are no payment card (those start 2-6), so paths keep them."""
    passing = [n for n in range(1733243456000, 1733243456100) if luhn_valid(str(n))]
    assert len(passing) >= 5
    for n in passing:
        assert redact_text(f"/orders/{n}") == f"/orders/{n}"
    assert redact_text("/orders/4111111111111111") == f"/orders/{MARK}"  # a Visa still goes


def test_raw_header_dicts_and_secret_dict_keys_are_redacted() -> None:
    """`log.info("h", headers=dict(scope["headers"]))`: bytes names, checked like any key and
    made text (the JSON renderer cannot write bytes keys); a key that is itself a secret."""
    headers = {b"x-api-key": b"LEAK1", b"x-db-password": b"LEAK2", b"accept": b"*/*"}
    assert R.redact(headers) == {"x-api-key": MARK, "x-db-password": MARK, "accept": "*/*"}
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWxlYWs"
    assert R.redact({jwt: 1, "ok": {"nested": 2}}) == {MARK: 1, "ok": {"nested": 2}}


def test_nested_structures_cycles_and_depth() -> None:
    cyclic: list[Any] = ["a"]
    cyclic.append(cyclic)
    data = {"outer": [{"password": "p"}, ("Bearer abcdefgh12345",)], "loop": cyclic}
    out = R.redact(data)
    assert out["outer"][0] == {"password": MARK}
    assert out["outer"][1] == ["Bearer " + MARK]
    assert out["loop"] == ["a", "[CYCLE]"]


def test_non_json_objects_become_redacted_repr() -> None:
    class Conn:
        def __repr__(self) -> str:
            return "<Conn postgresql://u:topsecret@h/db>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert R.redact(Conn()) == f"<Conn postgresql://u:{MARK}@h/db>"
    assert R.redact(Broken()).startswith("<unrepresentable Broken")


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


# --- properties --------------------------------------------------------------------------------


def luhn_complete(prefix: str) -> str:
    for d in string.digits:
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError


alnum = st.text(string.ascii_letters + string.digits, min_size=12, max_size=30)
secrets = st.one_of(
    # a credential is never all lower-case letters (random tokens have a digit or a capital);
    # `Bearer authentication` is words, kept (test_ordinary_text_is_kept)
    alnum.filter(lambda s: not (s.isalpha() and s.islower())).map(lambda s: f"Bearer {s}"),
    st.tuples(alnum, alnum, alnum).map(lambda t: f"eyJ{t[0]}.eyJ{t[1]}.{t[2]}"),
    st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
        lambda s: "AKIA" + s
    ),
    st.text(string.digits, min_size=14, max_size=17).map(lambda s: luhn_complete("4" + s)),
    alnum.map(lambda s: f"postgresql://user:{s}@db.internal/app"),
)
SENSITIVE_KEYS = ["password", "api_key", "Authorization", "session", "client_secret"]


def secret_part(secret: str) -> str:
    """The part that must never appear (the scheme word of 'Bearer x' may)."""
    if secret.startswith("Bearer "):
        return secret[len("Bearer ") :]
    if secret.startswith("postgresql://"):
        return secret.split(":", 2)[2].split("@")[0]
    return secret


@st.composite
def nested_with_secret(draw: st.DrawFn) -> tuple[Any, str]:
    secret = draw(secrets)
    under_key = draw(st.booleans())
    if under_key:
        value: Any = {draw(st.sampled_from(SENSITIVE_KEYS)): draw(alnum)}
        hidden = value[next(iter(value))]
    else:
        value = f"{draw(st.text(string.ascii_letters + ' ', max_size=10))} {secret} end"
        hidden = secret_part(secret)
    for _ in range(draw(st.integers(0, 6))):
        value = draw(
            st.sampled_from(
                [
                    lambda v: {"k": v},
                    lambda v: [1, v],
                    lambda v: ("x", v),
                    lambda v: {"a": {"b": v}},
                ]
            )
        )(value)
    return value, hidden


def render_structlog(value: Any) -> str:
    stream = StringIO()
    configure_logging(Settings(log_format="json"), stream=stream)
    structlog.get_logger("app").info("event", payload=value)
    return stream.getvalue()


def render_stdlib(value: Any) -> str:
    stream = StringIO()
    configure_logging(Settings(log_format="json"), stream=stream)
    logging.getLogger("app").warning("payload %s", value, extra={"data": value})
    return stream.getvalue()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(nested_with_secret())
def test_property_secrets_never_rendered_by_structlog(case: tuple[Any, str]) -> None:
    value, hidden = case
    out = render_structlog(value)
    json.loads(out)  # still valid JSON
    assert hidden not in out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(nested_with_secret())
def test_property_secrets_never_rendered_by_stdlib(case: tuple[Any, str]) -> None:
    value, hidden = case
    out = render_stdlib(value)
    json.loads(out)
    assert hidden not in out


def test_remembered_answers_are_bounded_in_number_and_in_length() -> None:
    """What a client sends (paths, user agents) is remembered only while short, and at most
    `size` of them: a scan of long or distinct texts pins nothing."""
    calls: list[str] = []

    def shout(text: str) -> str:
        calls.append(text)
        return text.upper()

    remembered = Remembered(shout, size=3, max_chars=8)
    assert [remembered("/a"), remembered("/a")] == ["/A", "/A"]
    assert calls == ["/a"]  # the second answer was remembered
    long = "/" + "x" * 20
    assert [remembered(long), remembered(long)] == [long.upper()] * 2
    assert calls == ["/a", long, long]  # too long to keep: computed each time
    assert long not in remembered.known
    for n in range(10):
        remembered(f"/{n}")
    assert len(remembered.known) <= 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # `;` and `,` end a bare value only before a space or the next pair
        ("password=abc;def next", f"password={MARK} next"),
        ("sid=abc123; Path=/; HttpOnly", f"sid={MARK}; Path=/; HttpOnly"),
        ("a=1;password=x;b=2", f"a=1;password={MARK};b=2"),
        ("password=a,b,c user=x", f"password={MARK} user=x"),
        ("password:abc,user:bob", f"password:{MARK},user:bob"),
        # a quoted value with an escaped quote or a doubled one; a quote never closed
        ('password="a\\"b c" next', f'password="{MARK}" next'),
        ("password='it''s' next", f"password='{MARK}' next"),
        ('password="abc', f'password="{MARK}"'),
        # a credential holding a colon; a token as a URL's user name
        ("bearer abcDEF123456:xyz", f"bearer {MARK}"),
        ("https://s3cr3tT0ken99@example.com/repo", f"https://{MARK}@example.com/repo"),
        ("card 4111.1111.1111.1111 declined", f"card {MARK} declined"),
        # headers as Python shows them (a list of tuples, Starlette's Headers(raw=...))
        ("[('authorization', 'rawtoken')]", f"[('authorization', '{MARK}')]"),
        (
            "Headers(raw=[(b'cookie', b'sid=1'), (b'accept', b'*/*')])",
            f"Headers(raw=[(b'cookie', b'{MARK}'), (b'accept', b'*/*')])",
        ),
        (
            "posted to https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXX ok",
            f"posted to https://{MARK} ok",
        ),
    ],
)
def test_values_with_separators_quotes_and_colons_go_whole(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_names_that_only_look_like_secrets_are_kept() -> None:
    """A Wi-Fi network's `ssid` is no session id; a URL's user name is no token; a dotted
    version is no card."""
    for text in [
        "ssid=HomeNetwork bssid=aa:bb:cc:dd:ee:ff",
        "ssh://git@github.com/org/repo.git https://first.last@example.com/x",
        "version 1.2.3.4; build 2024.12.03",
        "POST /oauth/token\nContent-Type: application/json",  # a credential is on its line
        "required fields: ['password', 'email']",  # a list of words, not a (key, value)
    ]:
        assert redact_text(text) == text


@pytest.mark.parametrize(
    ("route", "path", "shown"),
    [
        ("/reset/{token}", "/reset/abc", "/reset/[REDACTED]"),
        ("/reset/<uidb64>/<token>/", "/reset/MQ/t-1/", "/reset/MQ/[REDACTED]/"),  # Django
        ("/invite/{api_key:str}/go", "/api/invite/k/go", "/api/invite/[REDACTED]/go"),  # root
        ("/reset/{token}", "/reset//abc/", "/reset/[REDACTED]/"),  # folded as routers fold
        ("/items/{item_id}", "/items/3", "/items/3"),  # nothing secret: the path as sent
        ("/files/{token:path}", "/files/a/b", "/files/{token:path}"),  # spans segments
        ("/reset/{token}", "/other/abc", "/reset/{token}"),  # not aligned: the route
        ("/reset/{token}", "/", "/reset/{token}"),
    ],
)
def test_a_paths_secret_segments_are_named_by_its_route(route: str, path: str, shown: str) -> None:
    assert redact_path(route, path) == shown
