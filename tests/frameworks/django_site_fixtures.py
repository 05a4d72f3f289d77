"""The Django project's server, shared by the framework tests (migrated, two superusers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from readykit.serve import ServerProcess, serve

HERE = Path(__file__).parent
TOKEN = "django-ops-token"
USERS = {"alice": "alice-password-1", "bob": "bob-password-2"}


def django_env(tmp: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SETTINGS_MODULE": "django_site.settings",
        "DJANGO_DB": str(tmp / "django.sqlite3"),
        "READYKIT_STORE_URL": f"sqlite:///{tmp}/records.db",
        "READYKIT_OPS_TOKEN": TOKEN,
        "READYKIT_CACHE_ROUTES": json.dumps({"GET /me/": 60, "GET /greeting/": 60}),
        "READYKIT_RATE_LIMITS": json.dumps({"GET /items/{item_id}/": "3/minute"}),
        "READYKIT_LOG_LEVEL": "warning",
    }


def prepare_site(tmp: Path) -> dict[str, str]:
    """Migrate the database and create the users, with Django's own commands."""
    env = {**os.environ, **django_env(tmp)}
    admin = [sys.executable, "-m", "django"]
    subprocess.run([*admin, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=120)
    create = "; ".join(
        f"User.objects.create_superuser({name!r}, '{name}@example.com', {pw!r})"
        for name, pw in USERS.items()
    )
    code = f"from django.contrib.auth.models import User; {create}"
    subprocess.run([*admin, "shell", "-c", code], env=env, check=True, timeout=120)
    return django_env(tmp)


@pytest.fixture(scope="module")
def django_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("django")
    env = prepare_site(tmp)
    argv = [sys.executable, "-m", "uvicorn", "--port", "{port}", "django_site.asgi:application"]
    with serve(argv, env=env, cwd=HERE) as server:
        yield server
