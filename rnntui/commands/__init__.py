"""One module per `rnntui` subcommand: ``add_parser(subparsers)`` declares it (cheaply: no torch at import),
``run(args) -> exit code`` does it."""

import sys


def fail(message: str) -> int:
    """Report a problem the user can fix in one line on stderr, with no traceback."""
    print(f"rnntui: error: {message}", file=sys.stderr)
    return 2
