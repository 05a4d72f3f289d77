"""readykit's own features, each given what it needs of the others, in the order they install.

The kit installs whatever this yields, then a user's `kit.add_feature(...)` ones, the same way:
it never needs to know a feature, only the public names (`kit.cache`, `kit.jobs`, ...) come
from here. A feature that needs another is handed that feature, installed before it.
"""

from __future__ import annotations

from collections.abc import Iterator

from readykit.cache import CacheFeature
from readykit.dashboard import DashboardFeature
from readykit.feature import Feature
from readykit.guards.install import GuardsFeature
from readykit.jobs import JobsFeature
from readykit.privacy import Privacy, PrivacyFeature
from readykit.records import RecordsFeature


class BuiltIns:
    """The built-in features of one kit, wired: privacy, dashboard and jobs on the records, the
    dashboard on the cache, jobs on the dashboard."""

    def __init__(self, privacy: Privacy) -> None:
        self.guards = GuardsFeature()
        self.cache = CacheFeature()
        self.records = RecordsFeature()
        self.privacy = PrivacyFeature(self.records, privacy)
        self.dashboard = DashboardFeature(self.records, self.cache)
        self.jobs = JobsFeature(self.records, self.dashboard)

    def __iter__(self) -> Iterator[Feature]:
        """In install order: each after the features it was handed."""
        yield self.guards
        yield self.cache
        yield self.records
        yield self.privacy
        yield self.dashboard
        yield self.jobs
