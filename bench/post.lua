-- every request a small JSON POST (for the auto-audit bench)
wrk.method = "POST"
wrk.body = '{"amount": 100}'
wrk.headers["Content-Type"] = "application/json"
