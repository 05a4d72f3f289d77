"""`python -m readykit.demo`: the same as `readykit demo` with its defaults."""

from readykit.demo.server import run

run()
