"""`readykit privacy replay`: re-apply the erasure log through the app's erasers (after a
restore brought erased people back), and the hint `backup restore` prints when it is needed."""

from __future__ import annotations

import asyncio
from datetime import datetime

import click

from readykit.clitools import existing_store, load_kit, parse_when

ERASURE = "privacy_erasure"


async def erasures_after(store_url: str, since: float) -> int:
    """Erasures the store logged after `since` (0 when the store cannot be read)."""
    from readykit.records.store import StoreUnavailable, store_from_url

    store = store_from_url(store_url)
    try:
        await store.open()
        return len(await store.docs(ERASURE, since=since))
    except (StoreUnavailable, OSError):
        return 0
    finally:
        await store.close()


def restore_hint(created: datetime) -> str | None:
    """What `backup restore` should say when erasures happened after the backup was taken."""
    from readykit.settings import Settings

    count = asyncio.run(erasures_after(Settings().store_url, created.timestamp()))
    if not count:
        return None
    return (
        f"{count} erasure(s) were recorded after this backup was taken: the restored data may "
        "hold erased people again; run `readykit privacy replay --app module:kit`"
    )


@click.group()
def privacy() -> None:
    """Personal data: replay the erasure log."""


@privacy.command()
@click.option("--app", "target", required=True, help="module:attribute of the service's kit.")
@click.option("--store", "store_url", help="Store URL (default: the kit's store_url).")
@click.option("--since", help="Only erasures from this ISO date/time on (default: all).")
def replay(target: str, store_url: str | None, since: str | None) -> None:
    """Run the erasers again for every erasure in the log (after restoring a backup)."""
    from readykit.records.store import store_from_url

    kit = load_kit(target)
    jobs = kit.privacy_jobs
    if jobs is None:
        from readykit.clitools import UserError

        raise UserError("the kit has no privacy endpoints (READYKIT_RECORDS is off?)")
    # replaying against a store that is not there would create an empty one and report success
    if store_url:
        jobs.store = store_from_url(existing_store(store_url))
    else:
        existing_store(None, app=target)
    start = parse_when(since, "--since")

    async def run() -> int:
        try:
            return int(await jobs.replay(start))
        finally:
            await jobs.store.close()

    click.echo(
        f"replayed {asyncio.run(run())} erasure(s) through {len(kit.privacy.erasers)} eraser(s)"
    )
