"""Kubernetes manifests: valid against the Kubernetes schemas, probes mapped to the routes the
kit serves the way it means them, and a shutdown window that covers the kit's drain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from readykit import ReadyKit, Settings
from readykit.cli import cli
from readykit.deploy import DeployOptions, default_settings, render
from readykit.deploy.options import PRESTOP_S
from readykit.errors import ConfigurationError
from readykit.jobs.runner import STOP_WAIT_S
from readykit.testing import asgi_request

kubernetes_validate = pytest.importorskip("kubernetes_validate")

CUSTOM = {
    "service_name": "quotes",
    "health_prefix": "/healthz",
    "metrics_path": "/internal/metrics",
    "request_timeout_s": 120.0,
    "configure_logging": False,
}


def manifests(settings: Settings, **options: Any) -> dict[str, dict[str, Any]]:
    files = render(settings, DeployOptions(**options))
    return {
        name.removeprefix("kubernetes/"): yaml.safe_load(text)
        for name, text in files.items()
        if name.startswith("kubernetes/")
    }


def container(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [c] = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
@pytest.mark.parametrize("store_url", ["sqlite:///x.db", "postgresql://u:p@db/x"])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    version: str, store_url: str
) -> None:
    docs = manifests(Settings(**CUSTOM, store_url=store_url), image="registry/quotes:1.2")
    assert set(docs) == {"deployment.yaml", "service.yaml", "pdb.yaml"}
    for doc in docs.values():
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error


def test_an_invalid_manifest_is_caught_by_the_validation() -> None:
    doc = manifests(default_settings())["deployment.yaml"]
    doc["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.anyio
async def test_probes_hit_the_kits_own_routes_and_liveness_never_a_dependency() -> None:
    settings = Settings(**CUSTOM)
    c = container(manifests(settings))
    kit = ReadyKit(settings)

    @kit.check("database")
    async def database() -> None:
        raise ConnectionError("database down")

    app = kit.wrap(lambda scope, receive, send: None)  # type: ignore[arg-type,return-value]
    answers = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = c[probe]["httpGet"]["path"]
        assert c[probe]["httpGet"]["port"] == "http"
        answers[probe] = (await asgi_request(app, "GET", path, client=("10.0.0.7", 1))).status
    # the database is down: the pod is not ready, but it is alive and is not restarted
    assert answers == {"startupProbe": 200, "livenessProbe": 200, "readinessProbe": 503}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"


def test_the_shutdown_window_covers_the_drain() -> None:
    settings = Settings(**CUSTOM)
    docs = manifests(settings)
    pod = docs["deployment.yaml"]["spec"]["template"]["spec"]
    pre_stop = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop == ["sleep", str(PRESTOP_S)]
    drain = PRESTOP_S + 120.0 + STOP_WAIT_S + settings.records_flush_s
    assert pod["terminationGracePeriodSeconds"] > drain
    assert (
        manifests(default_settings())["deployment.yaml"]["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        < pod["terminationGracePeriodSeconds"]
    )  # a longer request timeout, a longer window


def test_settings_and_options_flow_into_the_manifests() -> None:
    docs = manifests(Settings(**CUSTOM, store_url="postgresql://u:pw-7Hq2@db/x"),
                     port=9000, image="registry/quotes:1.2", replicas=3,
                     token_secret="quotes-token")  # fmt: skip
    deployment = docs["deployment.yaml"]
    c = container(docs)
    env = {e["name"]: e for e in c["env"]}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert deployment["metadata"]["name"] == "quotes"
    assert deployment["spec"]["replicas"] == 3
    assert c["image"] == "registry/quotes:1.2"
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert annotations["prometheus.io/path"] == "/internal/metrics"
    assert annotations["prometheus.io/port"] == "9000"
    assert env["READYKIT_OPS_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "quotes-token", "key": "ops-token"}  # fmt: skip
    assert env["READYKIT_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "quotes-store"
    assert "pw-7Hq2" not in yaml.safe_dump(docs)  # the store's password never lands in a file
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]["memory"]
    assert docs["service.yaml"]["spec"]["selector"] == {"app.kubernetes.io/name": "quotes"}


def test_a_service_name_kubernetes_refuses_is_one_line() -> None:
    with pytest.raises(ConfigurationError, match="READYKIT_SERVICE_NAME") as err:
        render(Settings(service_name="Quotes API"))
    assert "\n" not in str(err.value)


def test_the_cli_writes_the_files_for_the_current_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READYKIT_SERVICE_NAME", "quotes")
    result = CliRunner().invoke(cli, ["deploy-files", "--out", str(tmp_path / "d"),
                                      "--port", "9000"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "d").as_posix()
                     for p in (tmp_path / "d").rglob("*") if p.is_file())  # fmt: skip
    assert written == [
        "grafana/dashboard.json", "kubernetes/deployment.yaml", "kubernetes/pdb.yaml",
        "kubernetes/service.yaml", "prometheus/alerts.test.yml", "prometheus/alerts.yml",
        "prometheus/scrape.yml",
    ]  # fmt: skip
    deployment = yaml.safe_load((tmp_path / "d/kubernetes/deployment.yaml").read_text())
    assert deployment["metadata"]["name"] == "quotes"
    monkeypatch.setenv("READYKIT_SERVICE_NAME", "Bad Name")
    bad = CliRunner().invoke(cli, ["deploy-files", "--out", str(tmp_path / "e")])
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()
