"""Guards: pure-ASGI layers between the kit's layer and the app, each switchable in Settings.

Their order is fixed here, outermost first, so it never depends on who registered first:
security headers dress every answer (429, 413 and 504 included); the rate limit rejects before
any body is read; the body and time limits bound the work; the response cache sits innermost,
so limits still apply to cached answers.
"""

# readykit's own guards are stages (readykit.stage), compiled into the kit's layer; an ASGI
# guard (Setup.add_guard) ordered below ORDER_STAGES wraps them all, any other runs inside them
ORDER_STAGES = 10
ORDER_SECURITY_HEADERS = 10
ORDER_CORS = 15
ORDER_RATE_LIMIT = 20
ORDER_BODY_LIMIT = 30
ORDER_TIMEOUT = 40
ORDER_RESPONSE_CACHE = 50
