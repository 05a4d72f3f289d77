"""readykit: every production layer for an ASGI service, and a CLI that measures readiness."""

from readykit.context import current_request_id
from readykit.errors import CheckRegistrationError, ConfigurationError, ReadykitError
from readykit.health.observation import Observation
from readykit.kit import ReadyKit, StartupCheckFailed
from readykit.record import RequestRecord
from readykit.settings import Settings

__all__ = [
    "CheckRegistrationError",
    "ConfigurationError",
    "Observation",
    "ReadyKit",
    "ReadykitError",
    "RequestRecord",
    "Settings",
    "StartupCheckFailed",
    "current_request_id",
]
__version__ = "0.1.0"
