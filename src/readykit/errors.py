"""One exception tree: everything readykit raises on purpose derives from ReadykitError."""

# the CLI's exit codes, one definition: check uses 2 for "warnings only", see readykit.check
EXIT_FAILED = 1  # the verdict failed: blockers, a failed verify, a threshold or baseline
EXIT_USAGE = 2  # a mistake the user can fix: a bad option, setting or argument
EXIT_TOOL = 3  # the environment failed: unreachable service or database, a missing binary


# the install extra (pyproject.toml) that brings each optional library: the one table the CLI
# and the runtime name a missing one from (tests/test_install.py checks it against pyproject)
EXTRA_OF = {
    "click": "cli",
    "rich": "cli",
    "yaml": "cli",
    "aiohttp": "load",
    "hdrh": "load",
    "scipy": "load",
    "zstandard": "backup",
    "jinja2": "dashboard",
    "fastapi": "demo",
    "fastapi_offline": "demo",
    "uvicorn": "demo",
    "alembic": "demo",
    "sqlalchemy": "sqlalchemy",
    "aiosqlite": "sqlalchemy",
    "redis": "redis",
    "asyncpg": "postgres",
    "psycopg": "postgres",
}


class ReadykitError(Exception):
    """Root of readykit's own errors; the message says what to do.

    `exit_code` is what the CLI exits with when one reaches it (translated at the root,
    readykit.cli): a user's mistake unless a subclass says otherwise.
    """

    exit_code = EXIT_USAGE


class ToolFailure(ReadykitError):
    """The environment failed (a service, a database, a binary, the disk), not the user."""

    exit_code = EXIT_TOOL


class VerdictFailed(ReadykitError):
    """What was checked did not pass (a verify, a threshold, a baseline)."""

    exit_code = EXIT_FAILED


class MissingExtra(ReadykitError):
    """An optional library is not installed; the message names the extra that brings it.

    A user's fix (exit 2); `readykit check`, whose 2 means "warnings only", exits 3.
    """


class ConfigurationError(ReadykitError):
    """A setting or a registration is wrong; raised at startup, never per request."""


class CheckRegistrationError(ConfigurationError):
    """A health check was registered with a wrong name, kind, timeout or signature."""


def require_extra(module: str, extra: str | None, setting: str) -> None:
    """Raise ConfigurationError naming the install extra when `module` is not importable.

    `extra` None: the one EXTRA_OF names. Looks the module up without importing it.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        extra = extra or EXTRA_OF[module.split(".")[0]]
        raise ConfigurationError(
            f"{setting}: needs the {module!r} package; pip install 'readykit[{extra}]'"
        )
