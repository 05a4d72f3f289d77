"""`readykit check`: grade a running service from outside and list its blockers with evidence.

Kept empty so `readykit --help` does not import aiohttp: use `readykit.check.runner`
(`CheckOptions`, `run_check`), `readykit.check.finding` and `readykit.check.report`.
"""
