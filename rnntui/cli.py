"""The `rnntui` command. Parsing is cheap: each command imports torch and the rest only when it runs."""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from pathlib import Path

from rnntui import __version__
from rnntui.commands import fail
from rnntui.engine import inventory
from rnntui.errors import UserError
from rnntui.plugins import add_plugins_dirs

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
    commands = _subcommands(parser)
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        if argv and (unknown := _not_a_corpus_or_path(argv[0], sorted(commands), [*leading, *argv])):
            return fail(unknown)
        argv = ["app", *argv]
    argv = argv[:1] + leading + argv[1:]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130


def _not_a_corpus_or_path(word: str, commands: list[str], argv: list[str]) -> str | None:
    """Why ``word``, the first argument, cannot open the app (None when it can: an option, a file or directory,
    "-" for stdin, or a corpus name), naming the nearest command or corpus."""
    if word.startswith("-") or Path(word).expanduser().exists():
        return None
    if "/" in word or "\\" in word:
        return f"{word}: no such file or directory"
    add_plugins_dirs(a.split("=", 1)[1] if "=" in a else b for a, b in zip(argv, [*argv[1:], ""])
                     if a.split("=")[0] == "--plugins-dir")
    try:
        corpora = [row["name"] for row in inventory.load().corpora]
    except UserError:
        return None  # the plugins cannot be listed: let the app open and show why
    if word in corpora:
        return None
    near = difflib.get_close_matches(word, [*commands, *corpora], n=1, cutoff=0.6)
    hint = f"; did you mean `rnntui {near[0]}`?" if near else "; `rnntui --help` lists the commands"
    return f"{word!r} is not a command, a corpus, a file or a run directory{hint} (`rnntui corpora` lists the corpora)"


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


if __name__ == "__main__":
    sys.exit(main())
