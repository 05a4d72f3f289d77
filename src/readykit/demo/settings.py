"""The demo service's own settings, read from `READYKIT_DEMO_*` variables."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_RATES = Path(__file__).parent / "data" / "XML_daily.xml"

# scrypt hash of the demo password "demo" (see auth.hash_password); override in production.
DEMO_PASSWORD_HASH = (
    "scrypt$16384$8$1$cmVhZHlraXQtZGVtby12MQ$-vrcKVCd1refN3Scz1ODLOmulmNQxxku5a-XbvZm9zg"  # noqa: S105
)


class DemoSettings(BaseSettings):
    """Configuration of the bundled demo. Every field can be set as `READYKIT_DEMO_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="READYKIT_DEMO_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///.readykit/demo.db",
        description="Async SQLAlchemy URL; a SQLite file's directory is created at startup.",
    )
    rates_url: str = Field(
        default=BUNDLED_RATES.as_uri(),
        description="Where Bank of Russia XML_daily rates come from: file://, a path, or http(s).",
    )
    rates_refresh_s: float = Field(default=3600.0, gt=0, description="Seconds between refreshes.")
    secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        description="Key that signs login tokens; random per process unless set.",
    )
    token_ttl_s: int = Field(default=3600, gt=0, description="How long a login token is valid.")
    username: str = Field(default="demo", min_length=1)
    password_hash: SecretStr = Field(
        default=SecretStr(DEMO_PASSWORD_HASH),
        description="scrypt hash of the demo user's password (default password: demo).",
    )
