"""The pod runs with the settings its manifest was generated from: a kit started with exactly
the env the generated Deployment sets answers the probes and the scrape; every setting the
artifacts read reaches that env; with metrics off nothing scrapes or alerts on metrics."""

from __future__ import annotations

import ast
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from readykit import ReadyKit, Settings
from readykit.cli import cli
from readykit.deploy import DeployOptions, render
from readykit.deploy.options import ARTIFACT_SETTINGS, DATA_DIR
from readykit.errors import ConfigurationError
from readykit.serve import serve
from readykit.settings import ENV_PREFIX, env_name
from readykit.testing import asgi_request

DEPLOY_SRC = Path(__file__).parents[2] / "src" / "readykit" / "deploy"
TOKEN = "pod-scrape-token"
CUSTOM_ENV = {
    "READYKIT_SERVICE_NAME": "quotes",
    "READYKIT_HEALTH_PREFIX": "/healthz",
    "READYKIT_METRICS_PATH": "/internal/metrics",
    "READYKIT_REQUEST_TIMEOUT_S": "120",
    "READYKIT_SLOW_REQUEST_MS": "250",
}


@pytest.fixture(autouse=True)
def no_readykit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's own READYKIT_* variables only (the pod sees nothing but its manifest's)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def generate(out: Path, env: dict[str, str], *args: str) -> Any:
    """`readykit deploy-files` under `env`; the CliRunner result."""
    return CliRunner().invoke(cli, ["deploy-files", "--out", str(out), *args], env=env)


def deployment(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((out / "kubernetes" / "deployment.yaml").read_text())
    return doc


def pod_env(dep: dict[str, Any], data: Path) -> dict[str, str]:
    """The container's env as the pod gets it: Secrets resolved, the volume at `data`."""
    [c] = dep["spec"]["template"]["spec"]["containers"]
    out = {}
    for e in c["env"]:
        assert "valueFrom" not in e or e["name"] == "READYKIT_OPS_TOKEN", e  # SQLite: no Secret
        out[e["name"]] = TOKEN if "valueFrom" in e else e["value"].replace(DATA_DIR, str(data))
    return out


def status(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_pod_with_the_manifests_env_answers_its_probes_and_scrape(tmp_path: Path) -> None:
    """Before the fix the container env lacked READYKIT_HEALTH_PREFIX/METRICS_PATH: 404s."""
    assert generate(tmp_path / "d", CUSTOM_ENV).exit_code == 0
    dep = deployment(tmp_path / "d")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    probes = {p: c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe",
                                                  "readinessProbe")}  # fmt: skip
    assert set(probes.values()) == {"/healthz/live", "/healthz/ready"}
    assert annotations["prometheus.io/path"] == "/internal/metrics"
    env = pod_env(dep, tmp_path / "data")
    (tmp_path / "data").mkdir()
    demo = [sys.executable, "-m", "readykit.cli", "demo", "--port", "{port}"]
    with serve(demo, cwd=tmp_path, env=env) as app:
        deadline = time.monotonic() + 60
        while status(f"{app.url}{probes['readinessProbe']}") != 200:  # warm-up: startup probe
            assert time.monotonic() < deadline, app.output()[-2000:]
            time.sleep(0.2)
        answers = {p: status(f"{app.url}{path}") for p, path in probes.items()}
        scrape = status(f"{app.url}{annotations['prometheus.io/path']}", TOKEN)
    assert answers == dict.fromkeys(probes, 200)
    assert scrape == 200


def test_every_setting_the_artifacts_read_reaches_the_pod_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each setting off its default is in the container env, and reads back as the same
    value in the pod; at their defaults none is added."""
    changed: dict[str, Any] = {
        "health_prefix": "/healthz",
        "metrics": False,
        "metrics_path": "/internal/metrics",
        "request_timeout_s": 120.5,
        "records_flush_s": 2.5,
        "slow_request_ms": 250.0,
    }
    assert set(changed) == set(ARTIFACT_SETTINGS) - {"service_name", "store_url"}
    settings = Settings(service_name="quotes", configure_logging=False, **changed)
    dep = yaml.safe_load(render(settings)["kubernetes/deployment.yaml"])
    env = pod_env(dep, tmp_path)
    assert {env_name(n) for n in changed} <= set(env)
    defaults = yaml.safe_load(render(Settings(service_name="quotes"))["kubernetes/deployment.yaml"])
    assert not {env_name(n) for n in changed} & set(pod_env(defaults, tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    in_pod = Settings()
    assert {n: getattr(in_pod, n) for n in ARTIFACT_SETTINGS if n != "store_url"} == {
        "service_name": "quotes", **changed}  # fmt: skip


def test_the_artifacts_read_no_setting_outside_the_list() -> None:
    """A new `settings.x` in src/readykit/deploy/ must join ARTIFACT_SETTINGS (and so the
    container env), or the pod and its probes/alerts drift apart again."""
    read = set()
    for path in DEPLOY_SRC.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name == "settings" and node.attr in Settings.model_fields:
                read.add(node.attr)
    assert read
    assert read - set(ARTIFACT_SETTINGS) == set()


@pytest.mark.anyio
async def test_metrics_off_means_no_scraping_and_no_metric_alerts(tmp_path: Path) -> None:
    settings = Settings(service_name="quotes", metrics=False, configure_logging=False)
    files = render(settings)
    assert sorted(files) == ["kubernetes/deployment.yaml", "kubernetes/pdb.yaml",
                             "kubernetes/service.yaml"]  # fmt: skip
    dep = yaml.safe_load(files["kubernetes/deployment.yaml"])
    assert "annotations" not in dep["spec"]["template"]["metadata"]
    assert "prometheus.io" not in "".join(files.values())
    env = pod_env(dep, tmp_path)
    assert env["READYKIT_METRICS"] == "false"
    # the pod this env makes answers its liveness probes (readiness needs a lifespan)
    app = ReadyKit(Settings(metrics=False, configure_logging=False)).wrap(
        lambda scope, receive, send: None  # type: ignore[arg-type,return-value]
    )
    [c] = dep["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "livenessProbe"):
        path = c[probe]["httpGet"]["path"]
        assert (await asgi_request(app, "GET", path, client=("10.0.0.7", 1))).status == 200


def test_the_cli_with_metrics_off_says_so_in_one_line(tmp_path: Path) -> None:
    result = generate(tmp_path / "d", {"READYKIT_SERVICE_NAME": "quotes",
                                       "READYKIT_METRICS": "false"})  # fmt: skip
    assert result.exit_code == 0, result.output
    [line] = result.stderr.strip().splitlines()
    assert "READYKIT_METRICS" in line
    written = sorted(p.relative_to(tmp_path / "d").as_posix()
                     for p in (tmp_path / "d").rglob("*") if p.is_file())  # fmt: skip
    assert written == ["kubernetes/deployment.yaml", "kubernetes/pdb.yaml",
                       "kubernetes/service.yaml"]  # fmt: skip
    on = generate(tmp_path / "e", {"READYKIT_SERVICE_NAME": "quotes"})
    assert on.exit_code == 0
    assert on.stderr == ""


@pytest.mark.parametrize("image", ["", " ", "registry/quotes 1.2"])
def test_an_empty_image_is_refused_in_one_line(tmp_path: Path, image: str) -> None:
    with pytest.raises(ConfigurationError, match="--image"):
        render(Settings(service_name="quotes"), DeployOptions(image=image))
    result = generate(tmp_path / "d", {"READYKIT_SERVICE_NAME": "quotes"}, "--image", image)
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "--image" in line
    assert not (tmp_path / "d").exists()


def test_an_empty_token_secret_is_refused(tmp_path: Path) -> None:
    result = generate(tmp_path / "d", {"READYKIT_SERVICE_NAME": "quotes"}, "--token-secret", "")
    assert result.exit_code == 2
    assert "--token-secret" in result.output
