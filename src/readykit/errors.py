"""One exception tree: everything readykit raises on purpose derives from ReadykitError."""

# the CLI's exit codes, one definition: check uses 2 for "warnings only", see readykit.check
EXIT_FAILED = 1  # the verdict failed: blockers, a failed verify, a threshold or baseline
EXIT_USAGE = 2  # a mistake the user can fix: a bad option, setting or argument
EXIT_TOOL = 3  # the environment failed: unreachable service or database, a missing binary


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


class ConfigurationError(ReadykitError):
    """A setting or a registration is wrong; raised at startup, never per request."""


class CheckRegistrationError(ConfigurationError):
    """A health check was registered with a wrong name, kind, timeout or signature."""


def require_extra(module: str, extra: str, setting: str) -> None:
    """Raise ConfigurationError naming the install extra when `module` is not importable."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"{setting}: needs the {module!r} package; pip install 'readykit[{extra}]'"
        )
