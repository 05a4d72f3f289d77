"""Redaction against corpora: over 1,000 secret shapes (keys in every casing and compound form,
quoted and URL-encoded values, DSNs, cookies, headers as text, dicts and pairs, JWTs, vendor and
cloud keys, PEM, cards with separators) leak nothing; ordinary log lines stay as they are."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from readykit.logging import Redactor, redact_text
from readykit.logging.redact import MARK, _redact_shapes, is_plain_token
from secret_corpus import ORDINARY_LINES, secret_shapes, structured_secrets


def test_the_corpus_is_large_enough() -> None:
    assert len(list(secret_shapes())) >= 1000


def test_no_secret_shape_leaks() -> None:
    leaks = [(text, redact_text(text)) for text, secret in secret_shapes()
             if secret in redact_text(text)]  # fmt: skip
    assert leaks == []


def test_no_structured_secret_leaks() -> None:
    redactor = Redactor()
    leaks = [v for v, secret in structured_secrets() if secret in repr(redactor.redact(v))]
    assert leaks == []


def test_ordinary_log_lines_are_unchanged() -> None:
    changed = [(line, redact_text(line)) for line in ORDINARY_LINES if redact_text(line) != line]
    assert changed == []


def test_quoted_values_keep_their_quotes() -> None:
    assert redact_text('DB_PASSWORD="two words" ok') == f'DB_PASSWORD="{MARK}" ok'
    assert redact_text("Cookie: JSESSIONID=abc; theme=dark") == f"Cookie: {MARK}"
    assert redact_text("postgresql://app:pa/ss@db/x") == f"postgresql://app:{MARK}@db/x"


WORDS = ["db", "app", "aws", "my", "x", "prod", "github", "mysql", "client", "user", "stripe"]
SECRET_WORDS = ["password", "passwd", "pwd", "secret", "token", "apikey", "sessionid", "session"]


@st.composite
def compound_key(draw: st.DrawFn) -> str:
    """A key with a sensitive word among others, joined and cased every which way."""
    words = draw(st.lists(st.sampled_from(WORDS), max_size=2))
    words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(SECRET_WORDS)))
    if draw(st.booleans()):
        words.append(draw(st.sampled_from(["key", "value", "data"])))
    style = draw(st.sampled_from(["snake", "SCREAMING", "kebab", "camel", "dotted"]))
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    sep = {"snake": "_", "SCREAMING": "_", "kebab": "-", "dotted": "."}[style]
    key = sep.join(words)
    return key.upper() if style == "SCREAMING" else key


@settings(max_examples=400)
@given(
    compound_key(),
    st.sampled_from(["=", ": ", " = ", "%3D", ":"]),
    st.sampled_from(["{}", '"{} and more"', "'{} x'", "%22{}%22"]),
    st.text(string.ascii_letters + string.digits, min_size=8, max_size=24),
    st.sampled_from(["", "cfg ", "GET /x?a=1&", "{"]),
)
def test_property_compound_keys_never_leak(
    key: str, sep: str, quoting: str, secret: str, before: str
) -> None:
    text = f"{before}{key}{sep}{quoting.format(secret)} tail"
    # a "secret" that is part of the text around it (`sessioni` of `sessionid`) shows there
    assume(secret not in text.replace(quoting.format(secret), ""))
    assert secret not in redact_text(text)


def test_no_secret_shape_takes_the_plain_token_fast_path() -> None:
    # the fast path skips every rule: no text any rule changes may take it
    taken = [text for text, _ in secret_shapes() if is_plain_token(text)]
    assert taken == []
    changed = [line for line in ORDINARY_LINES if _redact_shapes(line) != line]
    assert changed == []


@settings(max_examples=500)
@given(st.text(alphabet=string.ascii_lowercase + string.digits + "-_.:=/%@ A", max_size=60))
def test_property_the_plain_token_fast_path_changes_nothing_the_rules_would(text: str) -> None:
    assert redact_text(text) == (text if len(text) < 5 else _redact_shapes(text))


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",  # a card number is digits only: not a plain token
        "0123456789abcdef0123456789abcdef",  # a hex request id: plain
        "4111111111111111a",  # digits next to a letter are no card
        "akiaiosfodnn7example",  # an AWS key id only in lower case
        "ghp1234567890abcdefghij1234567890abcdef",
    ],
)
def test_plain_tokens_are_what_the_rules_leave_alone(text: str) -> None:
    assert redact_text(text) == _redact_shapes(text)
