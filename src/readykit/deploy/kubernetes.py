"""Kubernetes manifests: Deployment, Service and PodDisruptionBudget for a readykit service.

The probes mean what the kit means: startup and liveness on `<health>/live` (the event loop
and liveness checks, never a dependency, so a database blip never restarts pods), readiness on
`<health>/ready`. At shutdown the preStop pause lets endpoint removal spread before SIGTERM;
the kit then fails readiness, finishes requests, stops jobs and flushes its records, all within
`terminationGracePeriodSeconds`.
"""

from __future__ import annotations

from typing import Any

from readykit.deploy.options import DATA_DIR, PRESTOP_S, Target


def _probe(path: str, *, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _env(t: Target) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "READYKIT_SERVICE_NAME", "value": t.name},
        {"name": "READYKIT_OPS_TOKEN",
         "valueFrom": {"secretKeyRef": {"name": t.token_secret, "key": "ops-token"}}},
        {"name": "READYKIT_SPILL_PATH", "value": f"{DATA_DIR}/spill.jsonl"},
        {"name": "READYKIT_PRIVACY_KEY_PATH", "value": f"{DATA_DIR}/privacy.key"},
        {"name": "READYKIT_PRIVACY_ARCHIVE_DIR", "value": f"{DATA_DIR}/exports"},
    ]  # fmt: skip
    if t.store_secret is not None:  # shared store: its URL (with a password) stays in a Secret
        ref = {"secretKeyRef": {"name": t.store_secret, "key": "url"}}
        env.append({"name": "READYKIT_STORE_URL", "valueFrom": ref})
    else:
        env.append({"name": "READYKIT_STORE_URL", "value": f"sqlite:///{DATA_DIR}/readykit.db"})
    # the settings the probes, annotations and grace period were generated from, unless default
    env.extend({"name": name, "value": value} for name, value in t.pod_settings.items())
    return env


def deployment(t: Target) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": t.name, "app.kubernetes.io/part-of": "readykit"}
    pod_metadata: dict[str, Any] = {"labels": labels}
    if t.metrics:  # READYKIT_METRICS=false serves no metrics: nothing to scrape
        pod_metadata["annotations"] = {
            # scraped with the ops token: see prometheus/scrape.yml
            "prometheus.io/scrape": "true",
            "prometheus.io/path": t.metrics_path,
            "prometheus.io/port": str(t.port),
        }
    container = {
        "name": t.name,
        "image": t.image,
        "ports": [{"name": "http", "containerPort": t.port, "protocol": "TCP"}],
        "env": _env(t),
        "startupProbe": _probe(f"{t.health}/live", period=2, timeout=2, failures=90),
        "livenessProbe": _probe(f"{t.health}/live", period=10, timeout=3, failures=3),
        "readinessProbe": _probe(f"{t.health}/ready", period=5, timeout=3, failures=2),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        # no CPU limit: throttling stalls the event loop; memory is limited, requests are set
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "readykit-data", "mountPath": DATA_DIR}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": t.name, "labels": labels},
        "spec": {
            "replicas": t.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": t.name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": pod_metadata,
                "spec": {
                    "terminationGracePeriodSeconds": t.grace_period_s,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "fsGroup": 10001,
                    },
                    "containers": [container],
                    "volumes": [{"name": "readykit-data", "emptyDir": {}}],
                },
            },
        },
    }


def service(t: Target) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": t.name, "labels": {"app.kubernetes.io/name": t.name}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": t.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(t: Target) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": t.name},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": t.name}},
        },
    }


def manifests(t: Target) -> dict[str, dict[str, Any]]:
    """File name (under kubernetes/) -> manifest."""
    return {
        "deployment.yaml": deployment(t),
        "service.yaml": service(t),
        "pdb.yaml": disruption_budget(t),
    }
