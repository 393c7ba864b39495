"""The `rnntui` command. Parsing is cheap: each command imports torch and the rest only when it runs."""

from __future__ import annotations

import argparse
import importlib
import sys

from rnntui import __version__

# subcommand -> module in rnntui.commands with add_parser(subparsers) and run(args) -> exit code
COMMANDS = ("app", "train", "sample", "runs", "corpora", "plugins", "cells")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnntui",
        description="A terminal playground for character-level recurrent language models.",
        epilog="`rnntui` alone opens the app on the default corpus; `rnntui PATH_OR_CORPUS [options]` opens it "
        "on that. `--plugins-dir DIR` (before or after the command) also loads the plugin files in DIR.",
    )
    parser.add_argument("--version", action="version", version=f"rnntui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rnntui.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `--plugins-dir DIR` may come before the subcommand; every subcommand takes it, so move it after.
    leading = []
    while argv and (argv[0] == "--plugins-dir" or argv[0].startswith("--plugins-dir=")):
        take = 1 if "=" in argv[0] else 2
        leading, argv = leading + argv[:take], argv[take:]
    # `rnntui` alone, or `rnntui PATH_OR_CORPUS [options]`, opens the app: anything that is not a subcommand
    # (or the top-level --help/--version) goes to `rnntui app`.
    if not argv or (argv[0] not in _subcommands(parser) and argv[0] not in ("-h", "--help", "--version")):
        argv = ["app", *argv]
    argv = argv[:1] + leading + argv[1:]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from rnntui.commands import fail
    from rnntui.errors import UserError

    try:
        return args.run(args)
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


if __name__ == "__main__":
    sys.exit(main())
