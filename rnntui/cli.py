"""The `rnntui` command. Parsing is cheap: each command imports torch and the rest only when it runs."""

from __future__ import annotations

import argparse
import importlib
import sys

from rnntui import __version__

# subcommand -> module in rnntui.commands with add_parser(subparsers) and run(args) -> exit code
COMMANDS = ("train", "sample", "runs", "corpora")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnntui",
        description="A terminal playground for character-level recurrent language models.",
    )
    parser.add_argument("--version", action="version", version=f"rnntui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rnntui.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from rnntui.commands import fail
    from rnntui.core.errors import UserError

    try:
        return args.run(args)
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
