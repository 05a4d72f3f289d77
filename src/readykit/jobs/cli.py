"""`readykit job ping NAME --url URL`: a heartbeat from a cron line or a CI step."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import click

from readykit.clitools import HTTP_URL, ToolFailed, UserError
from readykit.logging.redact import redact_text

TIMEOUT_S = 10.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: urllib would resend the ops token to wherever it points (and
    turn the POST into a GET the service never records as a ping)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@click.group()
def job() -> None:
    """Report runs of jobs to a readykit service."""


@job.command()
@click.argument("name")
@click.option(
    "--url",
    required=True,
    type=HTTP_URL,
    help="The service's base URL, e.g. https://api.example.com",
)
@click.option("--token", envvar="READYKIT_OPS_TOKEN", help="The ops token (or READYKIT_OPS_TOKEN).")
@click.option(
    "--status",
    type=click.Choice(["success", "fail", "start"]),
    default="success",
    show_default=True,
    help="start opens a run; success or fail closes it (or records one).",
)
@click.option("--message", default="", help="Text kept with the run (its error, for fail).")
def ping(name: str, url: str, token: str | None, status: str, message: str) -> None:
    """POST /ops/jobs/NAME/ping: the job NAME started, succeeded or failed.

    Exit codes: 0 recorded, 2 a bad option or a refusal (401 token, 404 job), 3 the service
    could not be reached or failed (5xx).
    """
    target = (
        f"{url.rstrip('/')}/ops/jobs/{urllib.parse.quote(name, safe='')}/ping"
        f"?{urllib.parse.urlencode({'status': status})}"
    )
    request = urllib.request.Request(target, data=message.encode(), method="POST")  # noqa: S310
    request.add_header("content-type", "text/plain; charset=utf-8")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        line = redact_text(f"{target} answered {exc.code}: {detail}")
        if 300 <= exc.code < 400:  # not followed: the URL is the user's to fix
            line = redact_text(
                f"{target} answered {exc.code}, a redirect to {exc.headers.get('location')}: "
                "not followed (the token would go with it); give --url the service's own URL"
            )
        # 4xx: the token or the job name is wrong (the user's fix); 5xx: the service failed
        raise (ToolFailed if exc.code >= 500 else UserError)(line) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ToolFailed(redact_text(f"cannot reach {url}: {exc}")) from exc
    click.echo(f"{answer['job']}: run {answer['run_id']} {answer['outcome']}")
