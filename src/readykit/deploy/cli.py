"""`readykit deploy-files --out DIR`: the operations artifacts for the current settings."""

from __future__ import annotations

from pathlib import Path

import click

from readykit.clitools import writing
from readykit.deploy import NO_METRICS, DeployOptions, default_settings, write
from readykit.settings import Settings


@click.command("deploy-files")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (created if missing).",
)
@click.option("--port", default=8000, show_default=True, help="The container's port.")
@click.option("--image", default=None, help="Container image [default: SERVICE_NAME:latest].")
@click.option("--replicas", default=2, show_default=True, help="Instances to run.")
@click.option(
    "--token-secret",
    default=None,
    help="Secret with the ops token under key ops-token [default: SERVICE_NAME-ops].",
)
@click.option(
    "--defaults",
    is_flag=True,
    help="Ignore READYKIT_* variables: the artifacts of the default settings.",
)
def deploy_files(
    out: Path,
    port: int,
    image: str | None,
    replicas: int,
    token_secret: str | None,
    defaults: bool,
) -> None:
    """Write Kubernetes, Prometheus and Grafana files matching READYKIT_* settings."""
    settings = default_settings() if defaults else Settings()
    options = DeployOptions(port=port, image=image, replicas=replicas, token_secret=token_secret)
    with writing(out, "--out"):
        written = write(out, settings, options)
    for path in written:
        click.echo(str(path))
    if not settings.metrics:
        click.echo(NO_METRICS, err=True)
