"""Bad job declarations stop startup with one line that names the job."""

from __future__ import annotations

import pytest
from jobs_support import make_kit

from readykit.errors import ConfigurationError
from readykit.jobs import parse_duration


async def noop() -> None:
    return None


@pytest.mark.parametrize("name", ["Rates Refresh", "../etc", "", "x" * 65, "rates/refresh"])
def test_an_unsafe_job_name_is_one_line_naming_the_job(name: str) -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError) as err:
        kit.job(name, every="1h")(noop)
    message = str(err.value)
    assert "\n" not in message
    assert repr(name) in message
    assert "job name" in message


@pytest.mark.parametrize("every", ["every hour", "1x", "0s", -5, "h", True, "0.5s"])
def test_an_invalid_schedule_is_one_line_naming_the_job(every: object) -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError) as err:
        kit.job("rates.refresh", every=every)(noop)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
    assert "'rates.refresh'" in str(err.value)


def test_a_grace_shorter_than_the_run_time_limit_is_refused() -> None:
    kit = make_kit()
    with pytest.raises(ConfigurationError, match=r"job 'backup.nightly': grace 5m is shorter"):
        kit.job("backup.nightly", every="1d", grace="5m", timeout="30m")(noop)


def test_a_job_that_takes_arguments_is_refused() -> None:
    kit = make_kit()

    async def refresh(source: str) -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"job 'rates.refresh'.*requires source"):
        kit.job("rates.refresh", every="1h")(refresh)


def test_a_job_declared_twice_is_refused() -> None:
    kit = make_kit()
    kit.job("rates.refresh", every="1h")(noop)
    with pytest.raises(ConfigurationError, match="declared twice"):
        kit.job("rates.refresh", every="2h")(noop)


def test_the_decorator_returns_the_function_and_defaults_follow_the_period() -> None:
    kit = make_kit()
    assert kit.job("rates.refresh", every="1h")(noop) is noop
    spec = kit.jobs.specs["rates.refresh"]
    assert (spec.every, spec.grace, spec.timeout) == (3600.0, 360.0, 360.0)
    short = kit.jobs.add("ticker", noop, every="30s")
    assert short.grace == 60.0  # at least a minute


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1d", 86400.0), (300, 300.0),
     ("250ms", 0.25)],
)  # fmt: skip
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


def test_the_docs_first_example_declares_the_job() -> None:
    """docs/jobs.md's first python block runs as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "jobs.md").read_text()
    first = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    namespace: dict[str, object] = {}
    exec(compile(first, "docs/jobs.md", "exec"), namespace)  # noqa: S102
    spec = namespace["kit"].jobs.specs["rates.refresh"]  # type: ignore[attr-defined]
    assert (spec.every, spec.grace, spec.is_async) == (3600.0, 300.0, True)
