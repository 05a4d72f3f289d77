"""The cache: function results (`kit.cached`), responses of listed routes, tag invalidation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.cache.config import CacheConfig
from readykit.cache.function import SingleFlight, cached
from readykit.cache.responses import ResponseCacheGuard
from readykit.cache.store import (
    Cache,
    CacheBackend,
    CacheMetrics,
    MemoryCache,
    RedisCache,
    backend_from_url,
)
from readykit.guards import ORDER_RESPONSE_CACHE
from readykit.health.observation import Observation
from readykit.logging.config import LoggingConfig
from readykit.logging.redact import Redactor
from readykit.route_table import RouteTable

if TYPE_CHECKING:
    from readykit.feature import Setup

__all__ = [
    "Cache",
    "CacheBackend",
    "CacheFeature",
    "CacheMetrics",
    "MemoryCache",
    "RedisCache",
    "ResponseCacheGuard",
    "SingleFlight",
    "backend_from_url",
    "cached",
    "install_cache",
]


def install_cache(setup: Setup) -> Cache:
    """The kit's cache from `Settings.cache_url`, with its response guard and readiness check."""
    config = setup.section(CacheConfig)
    backend = backend_from_url(
        config.cache_url,
        max_entries=config.cache_max_entries,
        max_bytes=config.cache_max_bytes,
        namespace=setup.settings.service_name,  # services sharing a Redis keep apart
    )
    cache = Cache(backend, CacheMetrics(setup.metrics.registry))
    setup.on_shutdown(backend.aclose)
    if config.cache_routes:
        routes = RouteTable(config.cache_routes, setting="cache_routes")
        tags = {k: tuple(v) for k, v in config.cache_route_tags.items()}
        # a header named like a secret (`X-Api-Key`, `READYKIT_REDACT_KEYS`' ones) is a credential
        sensitive = Redactor(setup.section(LoggingConfig).redact_keys).is_sensitive_key
        setup.add_guard(
            ORDER_RESPONSE_CACHE,
            lambda app: ResponseCacheGuard(
                app,
                cache=cache,
                routes=routes,
                principal=setup.resolve_principal,
                tags=tags,
                sensitive=sensitive,
            ),
            when=lambda scope: scope["method"] in ("GET", "HEAD"),
        )
    if not isinstance(backend, MemoryCache):

        async def reachable() -> Observation:
            try:
                await cache.check()
            except Exception as exc:
                return Observation(
                    status="fail",
                    output=f"cache unreachable ({type(exc).__name__}); computing fresh",
                )
            return Observation()

        # the service still answers without its cache, only slower: a warning, not a failure
        setup.add_check("cache", reachable, critical=False, component_type="datastore")
    return cache


class CacheFeature:
    """The cache as a kit feature; `cache` is what it built (for `kit.cached`, the dashboard)."""

    name = "cache"
    cache: Cache

    def install(self, setup: Setup) -> None:
        self.cache = install_cache(setup)
