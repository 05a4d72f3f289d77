"""Built-in health checks: factories that validate their arguments and return a check callable.

Register the result like any check: `kit.add_check("database", sqlalchemy_engine(engine))`.
A check reports a problem it exists to detect (low disk, empty table, old schema) as a failing
`Observation` with a readable `output`; anything unexpected (driver errors, refused connections)
is raised and shown by the kit as exception type and message.
"""

from readykit.health.checks._common import Check, ClosableCheck
from readykit.health.checks.local import disk_free, memory, writable_dir
from readykit.health.checks.network import http_dependency, redis_ping
from readykit.health.checks.sql import alembic_at_head, row_count, sqlalchemy_engine

__all__ = [
    "Check",
    "ClosableCheck",
    "alembic_at_head",
    "disk_free",
    "http_dependency",
    "memory",
    "redis_ping",
    "row_count",
    "sqlalchemy_engine",
    "writable_dir",
]
