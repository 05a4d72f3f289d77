"""A corpus of secret shapes (each with the part that must never be seen) and of ordinary log
lines that redaction must leave alone. Shared by the redaction tests and the store leak test."""

from __future__ import annotations

import base64
import itertools
import string
from collections.abc import Iterator
from typing import Any


def _luhn_complete(prefix: str) -> str:
    for d in string.digits:
        digits = prefix + d
        total = 0
        for i, ch in enumerate(reversed(digits)):
            n = int(ch)
            if i % 2:
                n = n * 2 - 9 if n > 4 else n * 2
            total += n
        if total % 10 == 0:
            return digits
    raise AssertionError(prefix)


def marker(n: int) -> str:
    """A unique secret: letters and digits no ordinary text holds."""
    return f"Qz{n:05d}Xs9k"


BASE_KEYS = [
    "password", "passwd", "pwd", "passphrase", "secret", "token", "api_key", "apikey",
    "access_token", "refresh_token", "id_token", "client_secret", "private_key", "secret_key",
    "auth_token", "session", "sessionid", "session_id", "JSESSIONID", "PHPSESSID", "connect.sid",
    "csrf_token", "xsrf-token", "credentials", "dsn", "aws_secret_access_key", "GITHUB_TOKEN",
    "MYSQL_PWD", "DB_PASSWORD", "dbPassword", "X-Api-Key", "X-Auth-Token", "account_key",
    "card_number", "cvv", "ssn", "PGPASSWORD", "REDIS_PASSWORD", "stripeSecretKey",
    "slack_webhook_secret", "laravel_session", "_myapp_session", "remember_token",
]  # fmt: skip


def key_variants(key: str) -> list[str]:
    """The key in several casings and compound forms."""
    words = key.replace("-", "_").replace(".", "_").split("_")
    camel = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    return sorted({key, key.upper(), key.lower(), camel, "app_" + key.lower(), "DB_" + key.upper()})


def pair_shapes(key: str, value: str) -> list[str]:
    """`key` and `value` written as pairs, the way configs, URLs, logs and JSON write them."""
    return [
        f"{key}={value}",
        f"config {key} = {value} loaded",
        f"{key}: {value}",
        f'{key}="{value} with spaces"',
        f"{key}: '{value} two'",
        f'{{"{key}": "{value} x"}}',
        f"{{'{key}': '{value}'}}",
        f"GET /login?user=bob&{key}={value}&next=/",
        f"body user%3Dbob%26{key}%3D{value}%26x%3D1",
        f"%22{key}%22%3A%22{value}%22",
        f"--{key}={value}",
        f'json "{{\\"{key}\\":\\"{value} y\\"}}"',
        f"export {key}='{value}'",
    ]


def secret_shapes() -> Iterator[tuple[str, str]]:
    """(text, the secret it holds) pairs: at least 1,000 of them."""
    n = itertools.count()
    for base in BASE_KEYS:
        for key in key_variants(base):
            shapes = pair_shapes(key, "{v}")
            for shape in shapes[:: max(1, len(shapes) // 5)]:  # a spread of shapes per variant
                secret = marker(next(n))
                yield shape.replace("{v}", secret), secret
    for shape in pair_shapes("password", "{v}"):
        secret = marker(next(n))
        yield shape.replace("{v}", secret), secret
    for scheme in ("postgresql", "postgres", "mysql", "redis", "amqp", "mongodb+srv", "https"):
        for password in ("{v}", "pa/ss{v}", "p@ss{v}", "{v}/x/y", "a:b{v}", "%2F{v}"):
            secret = marker(next(n))
            pw = password.replace("{v}", secret)
            for user in ("app", "", "svc.user"):
                yield f"connect to {scheme}://{user}:{pw}@db.internal:5432/app failed", secret
                yield f"dsn={scheme}://{user}:{pw}@db/app", secret
    for header in ("Authorization", "authorization", "Proxy-Authorization"):
        for scheme in ("Bearer", "Basic", "Token", "Digest"):
            secret = marker(next(n))
            yield f"{header}: {scheme} {secret}", secret
            yield f"headers {{'{header}': '{scheme} {secret}'}}", secret
    for name in ("session", "sid", "JSESSIONID", "PHPSESSID", "connect.sid", "_app_session",
                 "remember_token", "csrftoken", "__Host-session", "ASP.NET_SessionId"):  # fmt: skip
        secret = marker(next(n))
        yield f"Cookie: theme=dark; {name}={secret}; lang=en", secret
        yield f"Set-Cookie: {name}={secret}; Path=/; HttpOnly; Secure", secret
        yield f"cookie {name}={secret}", secret
    for i in range(40):
        body = base64.urlsafe_b64encode(f'{{"sub":"{i}","n":{i * 7}}}'.encode()).decode()
        jwt = f"eyJhbGciOiJIUzI1NiJ9.{body.rstrip('=')}.{marker(next(n))}"
        yield f"token {jwt} rejected", jwt.split(".")[2]
        yield f"jwt={jwt}", jwt.split(".")[2]
    vendors = ["ghp_", "gho_", "github_pat_11AB", "glpat-", "xoxb-1234-", "sk_live_", "rk_test_",
               "sk-proj-", "AIzaSyA", "ya29.a0Af", "npm_", "django-insecure-"]  # fmt: skip
    for prefix in vendors:
        for _ in range(4):
            secret = marker(next(n))
            token = prefix + (secret * 4)[: 36 if prefix != "AIzaSyA" else 32]
            yield f"using {token} for the API", token[len(prefix) :]
    for i in range(40):
        aws = "AKIA" + f"{i:04d}QZXSWEDCRFVT"[:16]
        yield f"aws key {aws} in use", aws
    for _ in range(20):
        secret = marker(next(n))
        pem = f"-----BEGIN RSA PRIVATE KEY-----\nMIIE{secret}\nAAAA\n-----END RSA PRIVATE KEY-----"
        yield f"loaded {pem} ok", secret
        yield f"key=-----BEGIN PRIVATE KEY-----\\nMIIE{secret}\\n-----END PRIVATE KEY-----", secret
    for prefix in ("4111", "5555", "4000", "3782", "6011"):
        for i in range(10):
            digits = _luhn_complete(prefix + f"{i:03d}" + "00000" + f"{i * 37 % 1000:03d}")
            spaced = " ".join(digits[j : j + 4] for j in range(0, len(digits), 4))
            dashed = "-".join(digits[j : j + 4] for j in range(0, len(digits), 4))
            yield f"paid with {spaced} today", spaced
            yield f"card {dashed}.", dashed
            yield f"pan={digits}", digits
            dotted = ".".join(digits[j : j + 4] for j in range(0, len(digits), 4))
            yield f"card {dotted} declined", dotted
    # values that hold `;`, `,` or an escaped quote; a credential with a colon; a token as a
    # URL's user name
    for shape in ("password={v};tail", "DB_PASSWORD=p@ss;{v} more", "password={v},tail user=x",
                  'password="a\\"b {v}" next', "password='it''s {v}' next",
                  "Authorization: Bearer id:{v}", "bearer AbCdEf12:{v} rejected",
                  "token Zx9Yw8Vu7:{v}", "git clone https://{v}f00d@github.com/org/repo.git",
                  "fetch https://x9{v}@example.com:8443/api failed",
                  "headers [('authorization', 'Bearer {v}'), ('accept', '*/*')]",
                  "Headers(raw=[(b'x-api-key', b'{v}')])",
                  "hook https://hooks.slack.com/services/T01/B02/{v}x ok"):  # fmt: skip
        secret = marker(next(n))
        yield shape.replace("{v}", secret), secret
    # as Python shows values: bytes and prefixed strings, tuples, lists, dicts under the key;
    # quoted parameters in Authorization and Cookie headers; keys with spaces; more key names
    for shape in ("connecting with {'user': 'app', 'password': b'{v}'}",
                  "raw headers {b'x-api-key': b'{v}', b'host': b'h'}", "password=r'{v}'",
                  "kwargs={'url': 'https://x.example', 'auth': ('svc', '{v}')}",
                  '{"password": ["{v}"], "next": 1}', "token: {'value': '{v}', 'n': 1}",
                  "password='it\\'s {v}'", 'Authorization: Token token="{v}", next',
                  'Authorization: Digest username="bob", response="{v}", realm="x"',
                  'Cookie: sid="{v}"; theme=dark', '{"API Key": "{v}"}',
                  "credential={v}", "otp={v}", "passcode={v}", "jwt_assertion={v}",
                  "creds={v}", "conn_str={v}", "pin_code: {v}"):  # fmt: skip
        secret = marker(next(n))
        yield shape.replace("{v}", secret), secret


def structured_secrets() -> Iterator[tuple[Any, str]]:
    """Secrets in data: headers as dicts and as pairs (str and bytes), nested settings."""
    n = itertools.count(90_000)
    for header in ("Authorization", "authorization", "X-Api-Key", "Cookie", "Set-Cookie"):
        secret = marker(next(n))
        yield {"headers": {header: f"Bearer {secret}"}}, secret
        secret = marker(next(n))
        yield {"headers": [(header, secret)]}, secret
        secret = marker(next(n))
        yield {"headers": [(header.lower().encode(), secret.encode())]}, secret
    for key in ("DB_PASSWORD", "dbPassword", "aws_secret_access_key", "GITHUB_TOKEN", "MYSQL_PWD"):
        secret = marker(next(n))
        yield {"env": {key: secret}}, secret
        secret = marker(next(n))
        yield {"env": [f"{key}={secret}"]}, secret


ORDINARY_LINES = [
    "joined Wi-Fi ssid=HomeNetwork bssid=aa:bb:cc:dd:ee:ff",
    "cloning ssh://git@github.com/org/repo.git and https://first.last@example.com/x",
    "version 1.2.3.4 released; build 2024.12.03",
    "filters a=1;b=2,c=3 applied",
    "GET /api/v1/customers/12345/orders?page=2&sort=name 200 12.5ms",
    "POST /quotes 201 3.1ms",
    "connected to postgres at db.internal:5432 (pool size 10)",
    "user 42 logged in from 10.0.0.7",
    "retrying in 5s (attempt 3/5)",
    "cache hit ratio: 0.93",
    "token bucket refilled",
    "token_count=512 prompt_tokens=100",
    "session_timeout=30 token_type=bearer",
    "password_length=12 password_policy=strong",
    "password reset email sent to user 42",
    "passwordless login enabled for tenant acme",
    "api key rotated for service billing",
    "Authorization header missing: 401",
    "the secret garden (1911) by Frances Hodgson Burnett",
    "session started for user 9; sessions active: 14",
    "active_sessions=14 max_sessions=100",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "request id 123e4567-e89b-12d3-a456-426614174000 finished",
    "order 1234567812345678 shipped",
    "2026-11-23T01:02:03Z INFO worker started",
    "https://example.org/path?page=2",
    "https://docs.example.com/guide#section-3",
    "redis://cache.internal:6379/0 reachable",
    "postgresql://db.internal:5432/app migrated to version 3",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "disk usage 81% on /var/lib/postgresql",
    "queue depth 0, flush took 1.2 ms",
    "job rates.refresh finished in 2.3s",
    "health: pass (database: 3ms, cache: 1ms)",
    "author: Jane Doe, company: Acme, passenger: 3",
    "keyboard interrupt received, shutting down",
    "monkey patch applied to module http.client",
    "primary key violation on table orders",
    "key: value pairs parsed: 12",
    "sorting by key=name order=asc",
    "bearer of good news: deploy succeeded",
    "basic plan upgraded to pro",
    "cookie consent banner shown to 120 users",
    "csrf protection enabled for 4 routes",
    "ssn field removed from the form in v2",
    "card declined: insufficient funds",
    "user_id=7 tenant=acme role=admin",
    "tokens_used=1200 secretary_name=Bob",
    "span_id=0123456789abcdef",
    "version 1.24.3 build 4567",
    "phone +1 555 0100, zip 94107",
    "elapsed=0.53s status=ok items=42",
    "SELECT id, name FROM users WHERE id = ? LIMIT ?",
    "inserted 500 rows in 12ms",
    "listening on http://127.0.0.1:8000",
    "[2026-12-03 08:00:00] worker-3 heartbeat",
    "email sent to alice@example.com",
    "git commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "sha256:e3b0c44298fc1c149afbfc8996fb92427ae41e4649b934ca495991b7852b855",
    "pid=4242 ppid=1 uid=1000",
    "accessing /accounts/42/settings",
    "access log rotated",
    "process exited with code 0",
    "assessment scheduled for Friday",
    "the key takeaway: measure first",
    "auth service latency p99=120ms",
    "OAuth flow completed for client web-app",
    "tokenizer loaded: 50257 entries",
    "dsn not configured; using defaults",
    "password_changed_at=2024-05-01 auth_method=oauth2 auth_provider=google",
    "token Validation FAILED for request 7",
    "jwt_algorithm=HS256 jwt_alg=RS256",
    "password_reset=done otp_enabled=true",
    "gpio pin=17 set high; led_pin: 13 pin=None",
    "keycloak bearer_only=true bearer: true",
    "creds_file=/etc/creds.json conn_str_env=DATABASE_URL",
]
