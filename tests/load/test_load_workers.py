"""Several generator processes: shares add up and histograms merge exactly."""

from __future__ import annotations

from collections import Counter

from readykit.load.result import plan_intervals
from readykit.load.stats import Interval, Timeline, new_histogram, record
from readykit.load.workers import StepPlan, Target, run_step


def test_two_workers_merge_to_the_sum_of_their_histograms(target) -> None:
    seen: list[Interval] = []
    plan = StepPlan(Target(f"{target.url}/delay?ms=20"), users=4, duration_s=1.5, workers=2)
    result = run_step(plan, on_interval=lambda t: seen.append(t.recent(1)[0]))
    assert result.errors == 0
    assert result.latency.get_total_count() == result.requests
    assert result.requests == sum(i.requests for i in result.intervals) > 0
    assert result.config["workers"] == 2
    assert seen  # the parent saw the merged timeline grow while the workers ran


def test_wire_intervals_merge_exactly() -> None:
    a, b, both = new_histogram(), new_histogram(), new_histogram()
    for i in range(1, 2000):
        for h in (a if i % 3 else b, both):
            record(h, i * 0.0007)
    interval, warm = plan_intervals(10, 0)
    timeline = Timeline(interval, warm)
    for worker, hist in enumerate((a, b)):
        piece = Interval(0, requests=hist.get_total_count(), errors=Counter({"timeout": worker}))
        piece.hist = hist
        timeline.add(Interval.from_wire(piece.to_wire()))
    merged = timeline.measured()[0]
    assert merged.requests == both.get_total_count()
    assert merged.errors == Counter({"timeout": 1})
    assert merged.hist.equals(both)


def test_users_and_rate_are_split_over_workers() -> None:
    shares = StepPlan(Target("http://x/"), users=5, workers=2).shares()
    assert [s.users for s in shares] == [3, 2]
    assert [s.seed for s in shares] == [0, 1]
    rates = StepPlan(Target("http://x/"), rate=300, workers=3, connections=30).shares()
    assert [(s.rate, s.connections) for s in rates] == [(100, 10)] * 3
    assert len(StepPlan(Target("http://x/"), users=1, workers=4).shares()) == 1
