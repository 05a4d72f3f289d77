"""A typical server-rendered app: inline script and styles, a form; one page with an injected
script attribute (an XSS the policy must still stop)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from readykit import ReadyKit

PAGE = """<!doctype html><html><head><title>shop</title>
<style>#status { color: rgb(0, 128, 0); }</style></head>
<body><p id="status" style="font-weight: bold">waiting</p>
<form method="post" action="/"><input name="q"><button>go</button></form>
<script>document.getElementById("status").textContent = "script ran";</script>
</body></html>"""

INJECTED = """<!doctype html><html><head><title>shop</title></head>
<body><p id="status">waiting</p>
<img src="data:," onerror="document.getElementById('status').textContent='pwned'">
</body></html>"""


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def injected(request: Request) -> HTMLResponse:
    return HTMLResponse(INJECTED)


app = ReadyKit().wrap(Starlette(routes=[Route("/", home), Route("/injected", injected)]))
