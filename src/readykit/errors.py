"""One exception tree: everything readykit raises on purpose derives from ReadykitError."""


class ReadykitError(Exception):
    """Root of readykit's own errors; the message says what to do."""


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
