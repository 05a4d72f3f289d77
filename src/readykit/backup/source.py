"""Database URLs: which engine, where, and the same URL with its password removed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from readykit.backup.errors import BackupError

SQLITE = "sqlite"
POSTGRES = "postgresql"
_POSTGRES_SCHEMES = {"postgres", "postgresql"}
# libpq connection parameters that are secrets: taken out of the URL, never stored or shown.
# (`passfile`, `sslkey` and the like are file names, not secrets.)
SECRET_PARAMS = ("password", "sslpassword")


@dataclass(frozen=True)
class Source:
    """A database to back up or restore into; `password` never leaves the process's memory."""

    kind: str
    redacted_url: str
    path: Path | None = None
    url: str = ""
    password: str | None = None
    database: str = ""
    sslpassword: str | None = None  # the passphrase of the client key (`sslkey`)

    def with_database(self, name: str) -> Source:
        """The same PostgreSQL server, another database."""
        parts = urlsplit(self.url)
        url = urlunsplit(parts._replace(path="/" + name))
        redacted = urlunsplit(urlsplit(self.redacted_url)._replace(path="/" + name))
        return Source(
            POSTGRES,
            redacted,
            url=url,
            password=self.password,
            database=name,
            sslpassword=self.sslpassword,
        )


def parse_source(url: str) -> Source:
    """Parse `sqlite:///relative.db`, `sqlite:////abs.db` or `postgresql://user:pw@host/db`."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme == SQLITE:
        return _sqlite(url, parts.netloc, parts.path)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres(parts)
    raise BackupError(
        f"unsupported database URL {redact(url)!r}: use sqlite:///path.db or postgresql://…"
    )


def redact(url: str) -> str:
    """`url` without a password (in the authority) or other secret query parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in SECRET_PARAMS])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _sqlite(url: str, netloc: str, path: str) -> Source:
    # SQLAlchemy's convention: three slashes then a relative path, four for an absolute one.
    if netloc or not path.startswith("/") or path in ("", "/"):
        raise BackupError(f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
    file = Path(unquote(path[1:])).expanduser().absolute()
    return Source(SQLITE, f"sqlite:///{file}", path=file)


def _postgres(parts: SplitResult) -> Source:
    query = parse_qsl(parts.query)
    password = unquote(parts.password) if parts.password is not None else None
    sslpassword = None
    for key, value in query:
        if key == "password":
            password = value
        elif key == "sslpassword":
            sslpassword = value
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    clean_query = urlencode([(k, v) for k, v in query if k not in SECRET_PARAMS])
    clean = urlunsplit(("postgresql", netloc, parts.path, clean_query, ""))
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise BackupError(f"PostgreSQL URL {clean!r} names no database: add /dbname")
    if sslpassword is not None and ("\n" in sslpassword or "\r" in sslpassword):
        raise BackupError(f"PostgreSQL URL {clean!r}: sslpassword must not contain a line break")
    if sslpassword is not None and any(key == "service" for key, _ in query):
        # the tools get sslpassword through a service file of readykit's, which would hide the
        # user's service from them (libpq reads one service file)
        raise BackupError(
            f"PostgreSQL URL {clean!r}: with service=, put sslpassword in that service's "
            "definition (pg_service.conf), not in the URL"
        )
    return Source(
        POSTGRES, clean, url=clean, password=password, database=database, sslpassword=sslpassword
    )
