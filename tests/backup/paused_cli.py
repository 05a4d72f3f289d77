"""Run the real `readykit` CLI with one function made to stop there: it signals by creating a
marker file, then waits for a signal — so a test can SIGKILL the process at a known point.

    python paused_cli.py MARKER module:function before|after ARGS…
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    marker, target, when, *args = sys.argv[1:]
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)

    def paused(*a: Any, **kw: Any) -> Any:
        result = original(*a, **kw) if when == "after" else None
        Path(marker).write_text(str(os.getpid()))
        while True:
            signal.pause()  # until the test kills this process
        return result  # pragma: no cover

    setattr(module, name, paused)
    from readykit.cli import cli

    cli.main(args, prog_name="readykit")


if __name__ == "__main__":
    main()
