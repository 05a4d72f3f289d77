"""What the deploy artifacts are generated from: the kit's Settings plus the few facts only the
deployment knows (port, image, replicas, secret names)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from readykit.errors import ConfigurationError
from readykit.jobs.runner import STOP_WAIT_S
from readykit.settings import Settings, env_name

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
PRESTOP_S = 10  # time for endpoint removal to reach every load balancer before SIGTERM
DATA_DIR = "/var/lib/readykit"
# Every setting the artifacts are generated from. The container env carries each one that
# differs from its default (service_name and store_url it sets its own way), so the pod serves
# the paths the probes and the scrape job request and runs with the timings the grace period
# and the alerts assume. A test fails when src/readykit/deploy/ reads a setting not listed.
ARTIFACT_SETTINGS = (
    "service_name",
    "store_url",
    "health_prefix",
    "metrics",
    "metrics_path",
    "request_timeout_s",
    "records_flush_s",
    "slow_request_ms",
)
_SET_BY_THE_MANIFEST = ("service_name", "store_url")


@dataclass(frozen=True, slots=True)
class DeployOptions:
    """Facts about the deployment the settings do not hold.

    Args:
        port: the port the service listens on in its container.
        image: the container image; default `<service_name>:latest` (an empty one is refused).
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
    def metrics(self) -> bool:
        """Whether the service serves metrics: without them, no scraping, alerts or dashboard."""
        return self.settings.metrics

    @property
    def pod_settings(self) -> dict[str, str]:
        """READYKIT_* variable -> value of each setting the artifacts read that is not at its
        default (None, which no variable can say, is left out: the grace period then assumes
        a longer request than the pod's default timeout)."""
        out = {}
        for name in ARTIFACT_SETTINGS:
            value = getattr(self.settings, name)
            default = Settings.model_fields[name].get_default(call_default_factory=True)
            if name in _SET_BY_THE_MANIFEST or value is None or value == default:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out[env_name(name)] = text
        return out

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
    image = options.image
    if image is not None and (not image or any(c.isspace() for c in image)):
        raise ConfigurationError(f"--image {image!r}: not an image name (e.g. quotes:1.2)")
    token_secret = f"{name}-ops" if options.token_secret is None else options.token_secret
    if not _DNS_LABEL.fullmatch(token_secret):
        raise ConfigurationError(f"--token-secret {token_secret!r} is not a Kubernetes name")
    shared = settings.store_url.split("://", 1)[0] in ("postgresql", "postgres")
    return Target(
        settings=settings,
        name=name,
        port=options.port,
        image=f"{name}:latest" if image is None else image,
        replicas=options.replicas,
        token_secret=token_secret,
        store_secret=f"{name}-store" if shared else None,
        health=settings.health_prefix,
        metrics_path=settings.metrics_path,
    )
