"""Password hashes and signed tokens of the demo login."""

from __future__ import annotations

import pytest

from readykit.demo.auth import (
    bearer_principal,
    hash_password,
    issue_token,
    verify_password,
    verify_token,
)
from readykit.demo.settings import DEMO_PASSWORD_HASH

SECRET = "s3cret"


def test_hash_verifies_its_password_only() -> None:
    encoded = hash_password("correct horse")

    assert encoded.startswith("scrypt$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")
    assert hash_password("same", salt=b"x" * 16) == hash_password("same", salt=b"x" * 16)


def test_default_demo_hash_is_for_password_demo() -> None:
    assert verify_password("demo", DEMO_PASSWORD_HASH)
    assert not verify_password("Demo", DEMO_PASSWORD_HASH)


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$AAAA"],
)
def test_malformed_hash_never_matches(encoded: str) -> None:
    assert not verify_password("demo", encoded)


def test_token_round_trip() -> None:
    token = issue_token("demo", SECRET, 60, now=1000)

    assert verify_token(token, SECRET, now=1059) == "demo"


def test_token_expires() -> None:
    token = issue_token("demo", SECRET, 60, now=1000)

    assert verify_token(token, SECRET, now=1060) is None


def test_token_from_another_secret_is_refused() -> None:
    token = issue_token("demo", "other", 60, now=1000)

    assert verify_token(token, SECRET, now=1000) is None


def test_tampered_token_is_refused() -> None:
    token = issue_token("demo", SECRET, 60, now=1000)
    forged_payload = issue_token("admin", "other", 60, now=1000).split(".")[0]
    forged = f"{forged_payload}.{token.split('.')[1]}"

    assert verify_token(forged, SECRET, now=1000) is None


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "ключ.подпись"])
def test_garbage_tokens_are_refused(token: str) -> None:
    assert verify_token(token, SECRET) is None


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


def test_principal_names_the_token_subject() -> None:
    principal = bearer_principal(SECRET)
    token = issue_token("demo", SECRET, 60)

    assert principal(_scope((b"authorization", f"Bearer {token}".encode()))) == "user:demo"


@pytest.mark.parametrize(
    "headers",
    [
        (),
        ((b"authorization", b"Bearer not-a-token"),),
        ((b"authorization", b"Basic ZGVtbzpkZW1v"),),
    ],
)
def test_principal_is_none_without_a_valid_token(headers: tuple[tuple[bytes, bytes], ...]) -> None:
    assert bearer_principal(SECRET)(_scope(*headers)) is None
