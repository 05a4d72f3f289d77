"""Debug pages and stack traces recognised from the real frameworks' own output.

Python frameworks (Django, Werkzeug/Flask, Starlette, Litestar), Node.js and the JVM produce
their pages in a child process here (`real_debug_pages.py`); PHP, Ruby and Go answer over HTTP
from the real runtimes in test_check_fingerprints_runtimes.py. Ruby on Rails and ASP.NET are not
installable here: their samples below are transcribed from the documented output formats (not
captured from a live run), and say so.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from readykit.check.fingerprints import debug_output

PAGES = Path(__file__).with_name("real_debug_pages.py")


@cache
def real(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(PAGES), name], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("django-500", "Django debug page"),
        ("django-404", "Django debug page"),
        ("werkzeug", "Werkzeug debugger"),
        ("starlette-html", "Starlette debug page"),
        ("starlette-text", "Python traceback"),
        ("litestar", "Litestar debug page"),
        ("node", "Node.js stack trace"),
        ("java", "Java stack trace"),
    ],
)
def test_real_framework_output_is_recognised(page: str, expected: str) -> None:
    assert debug_output(real(page)) == expected


def test_django_404_debug_page_is_recognised_without_any_traceback() -> None:
    page = real("django-404")
    assert "Traceback" not in page
    assert debug_output(page.encode()) == "Django debug page"


def test_typography_and_entities_do_not_matter() -> None:
    curly = real("django-404").replace("You're", "You\u2019re").replace("'", "&#x27;")
    assert debug_output(curly) == "Django debug page"
    as_html = "<pre>" + real("node").replace("\n", "<br>").replace("  ", "&nbsp;&nbsp;") + "</pre>"
    assert debug_output(as_html) == "Node.js stack trace"


# Transcribed from documented formats (PHP and Go also run for real in the runtimes test).
PHP_FATAL = """<br />
<b>Fatal error</b>:  Uncaught Exception: boom in /var/www/html/index.php:3
Stack trace:
#0 /var/www/html/index.php(7): parse('x')
#1 {main}
  thrown in <b>/var/www/html/index.php</b> on line <b>3</b><br />
"""
RAILS = """<header><h1>NoMethodError in ItemsController#show</h1></header>
<h2>undefined method `name' for nil:NilClass</h2>
<p><code>Rails.root: /app</code></p>
<div id="traces"><a href="#">Application Trace</a> | <a href="#">Framework Trace</a>
app/controllers/items_controller.rb:5:in `show'
actionpack (7.1.3) lib/action_controller/metal/basic_implicit_render.rb:6:in `send_action'
"""
GO_PANIC = """panic: runtime error: index out of range [3] with length 3

goroutine 18 [running]:
main.handler({0x7a0c58, 0xc0000a61c0}, 0xc0000b4000)
\t/app/main.go:14 +0x1d
net/http.HandlerFunc.ServeHTTP(0x0?, {0x7a0c58?, 0xc0000a61c0?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
created by net/http.(*Server).Serve in goroutine 1
"""
ASPNET = """<title>Runtime Error</title>
<h1>Server Error in '/' Application.</h1>
<b> Exception Details: </b>System.NullReferenceException: Object reference not set.
<b>Stack Trace:</b>
<b>Version Information:</b>&nbsp;Microsoft .NET Framework Version:4.0.30319
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (PHP_FATAL, "PHP error or stack trace"),
        (RAILS, "Ruby on Rails error page"),
        (GO_PANIC, "Go panic"),
        (ASPNET, "ASP.NET error page"),
    ],
)
def test_documented_formats_of_other_runtimes(body: str, expected: str) -> None:
    assert debug_output(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"detail":[{"type":"int_parsing","loc":["query","limit"],"msg":"Input should be a '
        b'valid integer"}]}',
        b"<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1>"
        b"</center><hr><center>nginx</center></body></html>",
        # documentation that quotes one marker is not a debug page
        b"<p>When Python prints <code>Traceback (most recent call last):</code> read it from "
        b"the bottom.</p>",
        b"<p>Django shows a yellow page when DEBUG = True; never do that in production.</p>",
        b"Error: the name field is required",
        b"",
    ],
)
def test_ordinary_answers_are_not_debug_output(body: bytes) -> None:
    assert debug_output(body) is None


def test_a_real_django_debug_service_gets_its_blockers() -> None:
    """Discovery by crawling (no OpenAPI), a POST without a declared body fuzzed, and Django's
    technical pages recognised on the wire: a 500 to malformed input and a 404 on any path."""
    import asyncio

    from readykit.check.probe import ProbeOptions
    from readykit.check.runner import CheckOptions, check
    from readykit.serve import serve

    app = Path(__file__).with_name("django_seed_app.py")
    with serve([sys.executable, str(app), "--port", "{port}"]) as server:
        options = CheckOptions(
            server.url, only=("exposure", "input-handling"), probe=ProbeOptions()
        )
        report = asyncio.run(check(options))
    found = {f.check: f for f in report.findings}
    assert report.discovery["sources"]["POST /items"] == "crawl (form)"
    assert found["input-handling.stack-trace"].severity == "blocker"
    assert "Django debug page" in found["input-handling.stack-trace"].title
    assert found["exposure.debug"].severity == "blocker"  # the technical 404, status 404
    assert report.verdict == "not-ready"
