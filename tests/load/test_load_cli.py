"""`readykit load` from the command line: exit codes, JSON, HTML, baselines, merge, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from readykit.cli import cli
from readykit.load.baseline import compare
from readykit.load.result import LoadResult
from readykit.load.stats import decode
from readykit.load.workers import StepPlan, Target, run_step_async
from readykit.serve import free_port
from virtual_time import known_server, run_virtual


def load(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["load", *args])
    return result.exit_code, result.output


def test_json_has_the_contract_fields_and_thresholds_decide_the_exit_code(target, tmp_path) -> None:
    out = tmp_path / "run.json"
    code, output = load(
        f"{target.url}/delay?ms=20", "--users", "2", "--duration", "1s", "--workers", "1",
        "--json", str(out), "--threshold", "p95<10s", "--threshold", "errors<1%",
        "--threshold", "rps>0",
    )  # fmt: skip
    # p95<10s holds by construction: a request slower than the 10 s timeout is an error
    assert code == 0, output
    data = json.loads(out.read_text())
    assert {"requests", "errors", "rps", "latency_ms", "histogram"} <= set(data)
    assert set(data["latency_ms"]) >= {"p50", "p90", "p95", "p99", "p999", "max"}
    assert data["passed"] is True
    # p95<5ms cannot hold: the server waits 20 ms before it answers
    code, output = load(
        f"{target.url}/delay?ms=20", "--users", "2", "--duration", "1s", "--workers", "1",
        "--threshold", "p95<5ms",
    )  # fmt: skip
    assert code == 1
    assert "p95<5ms" in output
    assert "FAIL" in output


@pytest.mark.parametrize(
    "args",
    [
        ["--duration", "ten"],
        ["--threshold", "p95 is small"],
        ["--threshold", "errors<5ms"],
        ["--users", "2", "--rate", "10"],
        ["--sweep", "1,x"],
        ["--rate", "nan", "--duration", "1s"],
        ["--rate", "inf", "--duration", "1s"],
        ["--sweep-rate", "5,nan", "--duration", "1s"],
        ["--sweep-rate", "inf", "--duration", "1s"],
        ["--users", "1", "--regression-threshold", "-50%", "--duration", "1s"],
        ["--users", "1", "--regression-threshold", "nan", "--duration", "1s"],
        ["--users", "1", "--regression-threshold", "100%", "--duration", "1s"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(target, args) -> None:
    code, output = load(target.url, "--workers", "1", *args)
    assert code == 2
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_a_warmup_not_shorter_than_the_run_is_cut_with_a_warning() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    code, output = load(url, "--users", "1", "--duration", "1s", "--warmup", "5s",
                        "--workers", "1")  # fmt: skip
    assert code == 3  # nothing listens; the warning came before
    assert "warning: --warmup 5s is not shorter than --duration 1s" in output


def test_unreachable_target_fails_before_the_run_with_exit_3() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    code, output = load(url, "--users", "1", "--duration", "5s", "--workers", "1")
    assert code == 3
    assert "cannot reach" in output
    assert len(output.strip().splitlines()) == 1


def virtual_run(path: str, plan: StepPlan) -> LoadResult:
    """`plan` against `known_server` on virtual time (exact latencies, no host noise)."""

    async def main(loop: object) -> LoadResult:
        async with known_server() as base:
            step = replace(plan, target=Target(base + path))
            return await run_step_async(step, clock=loop.time)  # type: ignore[attr-defined]

    return run_virtual(main)


def test_baseline_same_server_passes_slowed_server_regresses() -> None:
    plan = StepPlan(Target(), users=4, duration_s=2.0, workers=1)
    before = [virtual_run("/delay?ms=20", plan)]
    assert not any(v.regression for v in compare(before, [virtual_run("/delay?ms=20", plan)]))
    slowed = compare(before, [virtual_run("/delay?ms=35", plan)])
    assert {v.metric for v in slowed if v.regression} >= {"p50", "p95"}


def test_a_short_run_still_finds_a_regression() -> None:
    # 1 s runs have 3 measured intervals, too few for the per-interval test: the comparison
    # falls back to the histograms and the request counts instead of saying "ok"
    plan = StepPlan(Target(), users=4, duration_s=1.0, workers=1)
    before = [virtual_run("/delay?ms=20", plan)]
    assert len(before[0].intervals) < 5
    same = compare(before, [virtual_run("/delay?ms=20", plan)])
    assert not any(v.failed for v in same), [v.line() for v in same]
    slowed = compare(before, [virtual_run("/delay?ms=200", plan)])
    assert {v.metric for v in slowed if v.regression} >= {"p95", "rps"}, [v.line() for v in slowed]


def test_too_little_to_compare_is_not_ok() -> None:
    plan = StepPlan(Target(), users=2, duration_s=1.0, warmup_s=0.0, workers=1)
    before = [virtual_run("/delay?ms=20", plan)]
    # answers after 900 ms: two requests in the whole run, too few for any latency test
    found = compare(before, [virtual_run("/delay?ms=900", plan)])
    assert any(v.failed for v in found)
    lines = [v.line() for v in found]
    assert not any(line.endswith(" ok") for line in lines if line.startswith("p95")), lines


def test_intervals_without_a_response_count_as_zero_throughput() -> None:
    plan = StepPlan(Target(), users=1, duration_s=2.0, warmup_s=0.0, workers=1)
    r = virtual_run("/delay?ms=600", plan)
    rps = r.samples("rps")
    assert len(rps) == len(r.intervals)
    assert 0.0 in rps
    assert len(r.samples("p95")) < len(rps)


def test_a_regression_against_the_baseline_exits_1(target, tmp_path) -> None:
    # the baseline answered in 1 ms (virtual time); the server waits 20 ms before it answers,
    # so the run is slower whatever the host: the comparison must say so and exit 1
    url = f"{target.url}/delay?ms=20"
    plan = StepPlan(Target(url), users=4, duration_s=2.0, workers=1)
    doc = virtual_run("/delay?ms=1", plan).to_dict()
    doc["config"] = plan.config(plan.target.load())
    base = tmp_path / "base.json"
    base.write_text(json.dumps(doc))
    code, output = load(url, "--users", "4", "--duration", "2s", "--workers", "1",
                        "--baseline", str(base))  # fmt: skip
    assert code == 1, output
    assert "p50" in output
    assert "REGRESSION" in output


def test_baseline_of_a_different_configuration_is_refused(target, tmp_path) -> None:
    base = tmp_path / "base.json"
    url = f"{target.url}/delay?ms=5"
    assert load(url, "--users", "2", "--duration", "1s", "--workers", "1",
                "--save-baseline", str(base))[0] == 0  # fmt: skip
    code, output = load(url, "--users", "3", "--duration", "1s", "--workers", "1",
                        "--baseline", str(base))  # fmt: skip
    assert code == 2
    assert "different configuration" in output
    assert "users 2 vs 3" in output


DAMAGES = {
    "bad base64 histogram": lambda d: d.update(histogram="!!not base64!!"),
    "missing requests": lambda d: d.pop("requests"),
    "config not an object": lambda d: d.update(config="users=4"),
    "no intervals": lambda d: d.update(intervals=[]),
    "interval row damaged": lambda d: d["intervals"][0].pop("requests"),
    "steps not runs": lambda d: d.update(steps="many"),
    "interrupted run": lambda d: d.update(interrupted=True),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_baseline_is_one_line_exit_2_before_the_run(tmp_path, damage: str) -> None:
    # nothing listens at the URL: a baseline checked only after the run would say exit 3
    url = f"http://127.0.0.1:{free_port()}/"
    plan = StepPlan(Target(url), users=2, duration_s=1.0, workers=1)
    doc = virtual_run("/delay?ms=20", plan).to_dict()
    doc["config"] = plan.config(plan.target.load())
    DAMAGES[damage](doc)
    base = tmp_path / "base.json"
    base.write_text(json.dumps(doc))
    code, output = load(url, "--users", "2", "--duration", "1s", "--workers", "1",
                        "--baseline", str(base))  # fmt: skip
    assert code == 2, output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert "cannot reach" not in output
    if damage != "steps not runs" and damage != "interrupted run":
        # merge refuses the same file in one line too
        good = tmp_path / "good.json"
        good.write_text(json.dumps(virtual_run("/delay?ms=20", plan).to_dict()))
        code, output = load("merge", str(good), str(base))
        assert code == 2, output
        assert "Traceback" not in output
        assert len(output.strip().splitlines()) == 1


def test_merge_adds_histograms_exactly(target, tmp_path) -> None:
    a, b, m = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "m.json"
    for path, ms in ((a, 5), (b, 30)):
        args = ["--users", "2", "--duration", "1s", "--workers", "1", "--json", str(path)]
        assert load(f"{target.url}/delay?ms={ms}", *args)[0] == 0
    # different URLs are different targets: merging them is refused
    assert load("merge", str(a), str(b))[0] == 2
    doc_b = json.loads(b.read_text())
    doc_b["config"] = json.loads(a.read_text())["config"]
    b.write_text(json.dumps(doc_b))
    code, output = load("merge", str(a), str(b), "--json", str(m))
    assert code == 0, output
    da, db, dm = (json.loads(p.read_text()) for p in (a, b, m))
    assert dm["requests"] == da["requests"] + db["requests"]
    assert dm["config"]["users"] == 4
    expected = decode(da["histogram"])
    expected.add(decode(db["histogram"]))
    merged = decode(dm["histogram"])
    assert merged.get_total_count() == expected.get_total_count()
    for p in (50, 90, 99, 99.9, 100):
        assert merged.get_value_at_percentile(p) == expected.get_value_at_percentile(p)


def test_html_report_is_self_contained_with_plots(target, tmp_path) -> None:
    page = tmp_path / "r.html"
    code, _ = load(f"{target.url}/delay?ms=5", "--sweep", "1,2", "--duration", "1s",
                   "--workers", "1", "--html", str(page))  # fmt: skip
    assert code == 0
    text = page.read_text()
    assert text.count("<svg") == 4
    assert "<script" not in text
    assert "src=" not in text
    assert "href=" not in text
    assert len(text) < 60_000


class _Seen(BaseHTTPRequestHandler):
    """Answers 200 and tells the test that the load has reached the server."""

    protocol_version = "HTTP/1.1"
    reached = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        self.reached.set()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_ctrl_c_prints_the_summary_of_what_ran(tmp_path) -> None:
    out = tmp_path / "partial.json"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Seen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "readykit.cli", "load",
             f"http://127.0.0.1:{server.server_address[1]}/",
             "--users", "2", "--duration", "60s", "--workers", "1", "--json", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # the run is under way once a request reached the server (the wait only bounds a hang)
        assert _Seen.reached.wait(30), "the load never reached the server"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 130, stderr
    assert "requests" in stdout
    assert "interrupted" in stdout
    data = json.loads(out.read_text())
    assert data["interrupted"] is True
    assert data["requests"] > 0


@pytest.mark.skipif(
    not os.path.isdir("/proc/self"), reason="needs /proc (a directory no one can create files in)"
)
def test_an_unwritable_output_is_refused_before_the_run() -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens: a run would fail with exit 3
    code, output = load(url, "--users", "1", "--duration", "5s", "--workers", "1",
                        "--save-baseline", "/proc/self/base.json")  # fmt: skip
    assert code == 3
    assert "--save-baseline" in output
    assert "cannot write" in output
    assert "cannot reach" not in output


def test_a_failed_write_leaves_the_previous_baseline_whole(tmp_path) -> None:
    # a file size limit (ulimit -f) makes the write fail half-way, as a full disk does
    path = tmp_path / "base.json"
    path.write_text('{"previous": true}\n')
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from readykit.load.report import write_json\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    write_json(Path(sys.argv[1]), {'big': 'x' * 100_000})\n"
        "except OSError:\n"
        "    sys.exit(7)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], timeout=30, check=False)
    assert proc.returncode == 7
    assert path.read_text() == '{"previous": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["base.json"]  # no temporary file left


class _SeenAgain(_Seen):
    reached = threading.Event()


def test_sigterm_stops_every_worker_and_prints_the_summary(tmp_path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SeenAgain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "readykit.cli", "load",
             f"http://127.0.0.1:{server.server_address[1]}/",
             "--users", "2", "--duration", "60s", "--workers", "2", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert _SeenAgain.reached.wait(30), "the load never reached the server"
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        workers = [int(p) for p in children.read_text().split()] if children.exists() else []
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            alive = []
            for pid in workers:  # never leave a worker loading, whatever the outcome
                try:
                    os.kill(pid, signal.SIGKILL)
                    alive.append(pid)
                except ProcessLookupError:
                    pass
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "terminated" in stderr
    assert "requests" in stdout
    assert workers
    assert alive == []  # reaped by their parent before it exited, not left loading
