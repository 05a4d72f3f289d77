"""A kit-wrapped Litestar app (whose constructor puts its own handler on the root logger and on
its `litestar` logger) logging secrets while it serves, the second through `request.logger`."""

import logging

from litestar import Litestar, Request, get

from readykit import ReadyKit

kit = ReadyKit()


@get("/hello")
async def hello(request: Request) -> dict[str, str]:
    logging.getLogger("shop").warning("charging with password=hunter2-secret-value")
    request.logger.warning("refund with api_key=sk_live_0123456789abcdefghij")
    return {"ok": "yes"}


app = kit.wrap(Litestar(route_handlers=[hello]))
