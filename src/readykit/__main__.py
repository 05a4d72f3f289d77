"""`readykit` and `python -m readykit`: the command line, which comes with the `cli` extra."""

from __future__ import annotations

import sys

from readykit.errors import ConfigurationError, require_extra


def main() -> None:
    """Run the CLI; without its extra, one line naming it instead of a traceback; Ctrl-C
    while the command is still loading exits 130 without one too."""
    try:
        require_extra("click", None, "readykit")
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    try:
        from readykit.cli import main as run

        run(sys.argv[1:])
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
