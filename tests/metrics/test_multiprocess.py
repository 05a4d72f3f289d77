"""Under gunicorn and `uvicorn --workers 2`, one scrape sums over workers; none is lost."""

import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from readykit.serve import serve
from support import wait_until

APPS = Path(__file__).parents[1] / "apps"
UVICORN_TWO_WORKERS = [
    sys.executable, "-m", "uvicorn", "--workers", "2", "--port", "{port}", "--app-dir", str(APPS),
]  # fmt: skip


def get(url: str) -> str:
    """GET, retried (at most twice) when the connection itself fails, as while a worker boots
    under a loaded machine; a request that reached the app is never sent twice unnoticed: the
    summed count would be off and the test fail."""
    for attempt in range(3):
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError:
            raise  # an answer, not a failed connection
        except (ConnectionResetError, ConnectionRefusedError, urllib.error.URLError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def route_counts(text: str) -> list[float]:
    return [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "http_server_request_duration_seconds_count"
        and s.labels["http_route"] == "/pid"
    ]


def scrape_until_settled(url: str, pids: set[str], sent: int) -> str:
    """Scrape until both workers' process metrics show and the count reaches `sent`.

    Each worker publishes its process metrics at startup, and records a request just after its
    response went out, so a scrape can land before the last few records; it is retried until a
    deadline that only turns a hang into a failure.
    """
    text = ""

    def settled() -> bool:
        nonlocal text
        text = get(f"{url}/metrics")
        reported = {
            s.labels.get("pid")
            for f in text_string_to_metric_families(text)
            if f.name == "process_resident_memory_bytes"
            for s in f.samples
        }
        return pids <= reported and route_counts(text) == [sent]

    wait_until(settled, f"both workers {pids} reported and the count reached {sent}")
    return text


def spread_over_two_workers(url: str) -> tuple[int, set[str]]:
    """Send concurrent batches until both workers have answered; (requests sent, pids).

    The port listens before the workers are ready (the parent binds it), so on a loaded
    machine one worker can serve thousands of requests before the other has booted: batches
    go on until both answered, and only a deadline turns a worker that never boots into a
    failure."""
    pids: set[str] = set()
    sent = 0
    with ThreadPoolExecutor(8) as pool:

        def both_answered() -> bool:
            nonlocal pids, sent
            pids |= set(pool.map(get, [f"{url}/pid"] * 40))
            sent += 40
            return len(pids) == 2

        wait_until(both_answered, "a request reached the second worker")
    return sent, pids


def check_sum_over_workers(url: str) -> None:
    sent, pids = spread_over_two_workers(url)
    text = scrape_until_settled(url, pids, sent)
    assert route_counts(text) == [sent]  # one series, summed over both workers
    cpu = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "process_cpu_seconds_total"
    ]
    assert len(cpu) == 1
    assert cpu[0] > 0


def test_gunicorn_two_workers(tmp_path: Path) -> None:
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        "2",
        "-b",
        "127.0.0.1:{port}",
        "-c",
        str(APPS / "gunicorn_conf.py"),
        "--chdir",
        str(APPS),
        "metrics_app:app",
    ]
    with serve(
        argv, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "READYKIT_OPS_TRUST_LOOPBACK": "true"}
    ) as server:
        try:
            check_sum_over_workers(server.url)
        except Exception as exc:  # the server's own account is what explains a failure here
            lines = [ln for ln in server.output().splitlines() if '"event": "request"' not in ln]
            raise AssertionError("gunicorn's output:\n" + "\n".join(lines[-40:])) from exc


def test_uvicorn_two_workers(tmp_path: Path) -> None:
    argv = [*UVICORN_TWO_WORKERS, "metrics_app:app"]
    with serve(
        argv, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "READYKIT_OPS_TRUST_LOOPBACK": "true"}
    ) as server:
        check_sum_over_workers(server.url)


def test_a_worker_killed_with_sigkill_leaves_no_live_gauges(tmp_path: Path) -> None:
    """`uvicorn --workers` runs no child-exit hook, and SIGKILL runs nothing: the dead worker's
    live gauges (active requests, its process figures) stayed in every scrape."""
    import os
    import signal

    argv = [*UVICORN_TWO_WORKERS, "metrics_app:app"]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "READYKIT_OPS_TRUST_LOOPBACK": "true"}
    with serve(argv, env=env) as server:
        sent, pids = spread_over_two_workers(server.url)
        scrape_until_settled(server.url, pids, sent)
        victim = sorted(pids)[0]
        os.kill(int(victim), signal.SIGKILL)

        def gone() -> bool:
            reported = {
                s.labels.get("pid")
                for f in text_string_to_metric_families(get(f"{server.url}/metrics"))
                if f.name == "process_resident_memory_bytes"
                for s in f.samples
            }
            return victim not in reported

        wait_until(gone, f"the killed worker {victim}'s process metrics left the scrape")


def test_only_dead_workers_live_gauge_files_are_dropped(tmp_path: Path) -> None:
    import os
    import subprocess

    from readykit.metrics import drop_dead_workers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    mine = str(os.getpid())
    names = [
        f"gauge_livesum_{dead}.db", f"gauge_liveall_{dead}.db", f"counter_{dead}.db",
        f"gauge_livesum_{mine}.db", "histogram_1.db", "notes.txt",
    ]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"")
    drop_dead_workers(str(tmp_path))
    drop_dead_workers(str(tmp_path))  # again, as a second worker's scrape would: nothing to do
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"gauge_livesum_{mine}.db", "histogram_1.db", "notes.txt"]
    )
