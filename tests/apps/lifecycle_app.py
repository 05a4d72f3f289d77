"""A kit-wrapped Starlette app that prints its lifecycle; served by a real uvicorn in tests."""

import contextlib
import sys
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings

kit = ReadyKit(Settings(service_name="lifecycle"))


def say(event: str) -> None:
    print(event, flush=True)
    sys.stdout.flush()


@kit.check("boot", kind="startup")
def boot() -> None:
    say("startup check")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    say("app startup")
    yield
    say(f"app shutdown, draining={kit.draining}")


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = kit.wrap(Starlette(routes=[Route("/", hello)], lifespan=lifespan))
