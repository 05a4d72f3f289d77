"""GFS retention: the pure plan on fake backup times, and one prune through the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from readykit.backup.create import create_backup
from readykit.backup.manifest import Verification
from readykit.backup.repo import Repository
from readykit.backup.retention import Item, Policy, plan
from readykit.backup.source import parse_source

Run = Callable[..., Result]
START = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)  # a Monday


def _kept(items: list[Item], policy: Policy) -> set[str]:
    return {d.item.id for d in plan(items, policy) if d.keep}


def _daily_for(days: int, per_day: int = 1) -> list[Item]:
    return [
        Item(f"d{day:03d}-{n}", START + timedelta(days=day, hours=6 * n))
        for day in range(days)
        for n in range(per_day)
    ]


def test_keep_last_keeps_the_newest_n() -> None:
    items = _daily_for(10)
    assert _kept(items, Policy(last=3)) == {"d009-0", "d008-0", "d007-0"}


def test_keep_daily_keeps_the_newest_of_each_day() -> None:
    items = _daily_for(5, per_day=4)
    assert _kept(items, Policy(daily=3)) == {"d004-3", "d003-3", "d002-3"}


def test_keep_weekly_and_monthly_use_iso_weeks_and_months() -> None:
    items = _daily_for(120)
    kept = _kept(items, Policy(weekly=2, monthly=3))
    # Last backup: 2024-04-29 (Monday, day 119). Weekly: the newest of the week of 04-29 and of
    # the week of 04-22 (its Sunday 04-28). Monthly: newest of April, March, February.
    assert kept == {"d119-0", "d118-0", "d090-0", "d059-0"}


def test_rules_combine_and_count_distinct_periods_only() -> None:
    items = _daily_for(3, per_day=2)
    decisions = plan(items, Policy(last=1, daily=2))
    reasons = {d.item.id: d.reasons for d in decisions if d.keep}
    assert reasons == {"d002-1": ("last", "daily"), "d001-1": ("daily",)}


def test_newest_verified_backup_is_never_removed() -> None:
    items = _daily_for(6)
    items[1] = Item(items[1].id, items[1].created, verified=True)
    items[2] = Item(items[2].id, items[2].created, verified=True)
    decisions = {d.item.id: d for d in plan(items, Policy(last=1))}
    assert decisions["d002-0"].keep
    assert decisions["d002-0"].reasons == ("newest verified",)
    assert not decisions["d001-0"].keep
    assert decisions["d005-0"].keep


def test_no_backups_no_decisions() -> None:
    assert plan([], Policy(last=1)) == []


def test_prune_through_the_cli(run: Run, tmp_path: Path, repo: Path) -> None:
    db = tmp_path / "p.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    repository = Repository.open(repo, create=True)
    source = parse_source(f"sqlite:///{db}")
    made = [
        create_backup(repository, source, "gzip", None, now=START + timedelta(days=d))
        for d in range(6)
    ]
    repository.record_verification(made[0], Verification("passed", START.isoformat()))

    dry = run("prune", "--repo", repo, "--keep-last", "2", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would remove 3 of 6 backups" in dry.output
    assert len(repository.manifests()) == 6

    done = run("prune", "--repo", repo, "--keep-last", "2", "--textfile", tmp_path / "m.prom")
    assert done.exit_code == 0, done.output
    left = [m.id for m in repository.manifests()]
    assert left == [made[0].id, made[4].id, made[5].id]
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        [f"{i}.json" for i in left] + [f"{i}.rkb" for i in left] + ["config", "lock"]
    )
    assert "readykit_backup_backups" in (tmp_path / "m.prom").read_text()


def test_prune_without_a_policy_is_refused(run: Run, repo: Path) -> None:
    repo.mkdir()
    result = run("prune", "--repo", repo)
    assert result.exit_code == 2
    assert "no --keep-* option" in result.stderr


@pytest.mark.parametrize("moment", [START, START + timedelta(days=400)])
def test_yearly_keeps_one_per_year(moment: datetime) -> None:
    items = [Item("old", START - timedelta(days=400)), Item("new", moment)]
    assert _kept(items, Policy(yearly=5)) == {"old", "new"}


def test_newest_means_newest_in_the_chain_not_by_a_skewed_clock() -> None:
    # seq 1-3 were taken with a clock 10 days fast; seq 4-5 are the real newest.
    times = [START + timedelta(days=10, minutes=i) for i in range(3)]
    times += [START + timedelta(minutes=i) for i in range(2)]
    items = [Item(f"s{n}", t, sequence=n) for n, t in enumerate(times, 1)]
    assert _kept(items, Policy(last=2)) == {"s5", "s4"}
    items[1] = Item("s2", times[1], verified=True, sequence=2)
    items[3] = Item("s4", times[3], verified=True, sequence=4)
    decisions = {d.item.id: d for d in plan(items, Policy(last=1))}
    assert decisions["s4"].reasons == ("newest verified",)
    assert not decisions["s2"].keep


def test_prune_keep_last_through_the_cli_survives_clock_skew(
    run: Run, tmp_path: Path, repo: Path
) -> None:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    repository = Repository.open(repo, create=True)
    source = parse_source(f"sqlite:///{db}")
    skewed = [START + timedelta(days=10, minutes=i) for i in range(3)]
    real = [START + timedelta(minutes=i) for i in range(3)]
    ids = []
    for moment in skewed + real:
        with repository.lock("create"):
            ids.append(create_backup(repository, source, "none", None, now=moment).id)
    result = run("prune", "--repo", repo, "--keep-last", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in repo.glob("*.json")) == sorted(ids[-2:])
