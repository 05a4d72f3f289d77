"""Health checks: registry, health+json rendering, endpoints and built-in checks."""

from readykit.health.observation import Observation
from readykit.health.registry import CheckResult, HealthRegistry, Kind

__all__ = ["CheckResult", "HealthRegistry", "Kind", "Observation"]
