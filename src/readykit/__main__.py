"""`readykit` and `python -m readykit`: the command line, which comes with the `cli` extra."""

from __future__ import annotations

import sys

from readykit.errors import ConfigurationError, require_extra


def main() -> None:
    """Run the CLI; without its extra, one line naming it instead of a traceback."""
    try:
        require_extra("click", None, "readykit")
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    from readykit.cli import main as run

    run(sys.argv[1:])


if __name__ == "__main__":
    main()
