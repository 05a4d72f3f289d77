"""What the deploy artifacts are generated from: the kit's Settings plus the few facts only the
deployment knows (port, image, replicas, secret names)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from readykit.errors import ConfigurationError
from readykit.jobs.runner import STOP_WAIT_S
from readykit.settings import Settings

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
PRESTOP_S = 10  # time for endpoint removal to reach every load balancer before SIGTERM
DATA_DIR = "/var/lib/readykit"


@dataclass(frozen=True, slots=True)
class DeployOptions:
    """Facts about the deployment the settings do not hold.

    Args:
        port: the port the service listens on in its container.
        image: the container image; default `<service_name>:latest`.
        replicas: instances to run.
        token_secret: the Kubernetes Secret holding the ops token under key `ops-token`;
            default `<service_name>-ops`.
    """

    port: int = 8000
    image: str | None = None
    replicas: int = 2
    token_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Settings and options resolved into the values every artifact uses."""

    settings: Settings
    name: str
    port: int
    image: str
    replicas: int
    token_secret: str
    store_secret: str | None
    health: str
    metrics_path: str

    @property
    def selector(self) -> str:
        """The PromQL label matcher of this service's series (the scrape job is its name)."""
        return f'job="{self.name}"'

    @property
    def grace_period_s(self) -> int:
        """terminationGracePeriodSeconds: preStop, the longest request, jobs, a last flush."""
        request_s = self.settings.request_timeout_s or 60.0
        flush_s = self.settings.records_flush_s + 5.0
        return math.ceil(PRESTOP_S + request_s + STOP_WAIT_S + flush_s + 5)


def resolve(settings: Settings, options: DeployOptions) -> Target:
    """Check that the settings make a valid Kubernetes deployment; one line names what not."""
    name = settings.service_name
    if not _DNS_LABEL.fullmatch(name):
        raise ConfigurationError(
            f"service_name: {name!r} is not a Kubernetes name (lower-case letters, digits and "
            "'-', at most 63); set READYKIT_SERVICE_NAME"
        )
    if not 1 <= options.port <= 65535:
        raise ConfigurationError(f"--port {options.port}: use 1-65535")
    if options.replicas < 1:
        raise ConfigurationError(f"--replicas {options.replicas}: use at least 1")
    token_secret = options.token_secret or f"{name}-ops"
    if not _DNS_LABEL.fullmatch(token_secret):
        raise ConfigurationError(f"--token-secret {token_secret!r} is not a Kubernetes name")
    shared = settings.store_url.split("://", 1)[0] in ("postgresql", "postgres")
    return Target(
        settings=settings,
        name=name,
        port=options.port,
        image=options.image or f"{name}:latest",
        replicas=options.replicas,
        token_secret=token_secret,
        store_secret=f"{name}-store" if shared else None,
        health=settings.health_prefix,
        metrics_path=settings.metrics_path,
    )
