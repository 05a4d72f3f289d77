"""The cache's section of the settings (see readykit.section)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from readykit.cache.store import cache_scheme
from readykit.section import Positive, Section, parsed_by, route_keys


class CacheConfig(Section):
    """readykit.cache: the backend, and the responses it keeps."""

    cache_url: Annotated[str, AfterValidator(parsed_by(cache_scheme))] = Field(
        default="memory://", description="memory:// or redis://host:port/db."
    )
    cache_max_entries: int = Field(
        default=10_000, gt=0, description="Entries the memory cache holds before evicting."
    )
    cache_max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Bytes the memory cache holds before evicting."
    )
    cache_routes: Annotated[dict[str, Positive], AfterValidator(route_keys("cache_routes"))] = (
        Field(
            default_factory=dict,
            description="GET/HEAD routes whose responses are cached, with TTL seconds: "
            '{"GET /rates": 60}.',
        )
    )
    cache_route_tags: Annotated[
        dict[str, list[str]], AfterValidator(route_keys("cache_route_tags"))
    ] = Field(
        default_factory=dict,
        description='Tags of cached responses, for invalidate(tag): {"GET /rates": ["rates"]}.',
    )
