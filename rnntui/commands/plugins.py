"""`rnntui plugins`: the plugins found, where from, what each registered, and what failed (with tracebacks)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from rnntui.plugins import (
    ENV_PATH, add_plugins_dirs, bundled_dir, get_registry, plugins_dirs_from_env, reset_registry, user_plugins_dir,
)


class PluginsDirAction(argparse.Action):
    """``--plugins-dir DIR``: load the plugin files in DIR too, from the moment it is parsed (and in the run's
    process, which inherits the setting)."""

    def __call__(self, parser, namespace, values, option_string=None):
        add_plugins_dirs([values])
        reset_registry()
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])


def add_plugins_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Give an argparse parser the ``--plugins-dir DIR`` option (repeatable)."""
    parser.add_argument("--plugins-dir", action=PluginsDirAction, metavar="DIR", default=None,
                        help="also load the plugin files (*.py) in DIR (repeatable); see `rnntui plugins`")


def add_plugins_dir_everywhere(sub) -> None:
    """Give every subcommand, including those added after this one, the ``--plugins-dir DIR`` option."""

    def ensure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        if not getattr(parser, "_rnntui_plugins_dir", False):
            add_plugins_dir_argument(parser)
            parser._rnntui_plugins_dir = True
        return parser

    for parser in set(sub.choices.values()):
        ensure(parser)
    if not getattr(sub, "_rnntui_plugins_dir", False):
        original = sub.add_parser
        sub.add_parser = lambda *args, **kwargs: ensure(original(*args, **kwargs))
        sub._rnntui_plugins_dir = True


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plugins", help="list plugins, what they register, and failures",
        description="List the plugins rnntui found (built-in, bundled gallery, entry points in the group "
        "`rnntui`, plugin directories), what each registered, and any that failed, with tracebacks on stderr. "
        "RNNTUI_LOAD_PLUGINS (allow-list, empty = none) and RNNTUI_DISABLED_PLUGINS (deny-list) choose what loads.")
    p.add_argument("--json", action="store_true", help="print JSON (failures include their tracebacks)")
    p.set_defaults(run=run)
    add_plugins_dir_everywhere(sub)


def run(args: argparse.Namespace) -> int:
    logger = logging.getLogger("rnntui.plugins")
    disabled, logger.disabled = logger.disabled, True  # this command prints the failures itself
    try:
        registry = get_registry()
    finally:
        logger.disabled = disabled
    if args.json:
        print(json.dumps(registry.to_json(), indent=1))
        return 0

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    table = Table("plugin", "version", "source", "registered", "status")
    for info in registry.plugins.values():
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in
                               (("cells", info.cells), ("corpora", info.corpora)) if names) or "-"
        if info.errors:
            status = f"[red]{len(info.errors)} failure{'s' if len(info.errors) > 1 else ''}[/]"
        elif not info.loaded:
            status = f"[dim]not loaded: {escape(info.note)}[/]"
        else:
            status = "ok"
        table.add_row(escape(info.name), escape(info.version or "-"), info.source, escape(registered), status)
    console.print(table)
    dirs = [("bundled", bundled_dir()), *(("--plugins-dir", d) for d in plugins_dirs_from_env()),
            *((ENV_PATH, d) for d in os.environ.get(ENV_PATH, "").split(os.pathsep) if d),
            ("user", user_plugins_dir())]
    for label, d in dirs:
        exists = d is not None and os.path.isdir(d)
        console.print(f"[dim]{label} plugin directory: {escape(str(d or '-'))}{'' if exists else ' (none)'}[/]")
    for note in registry.notes:
        err.print(f"rnntui: {note}", markup=False)
    failures = registry.failures()
    for info, error in failures:
        where = f"{info.source}, {info.location}" if info.location else info.source
        if error.traceback:
            err.print(error.traceback.rstrip(), markup=False)
        err.print(f"rnntui: plugin {info.name!r} ({where}): {error.stage}: {error.message}", markup=False)
    if failures:
        print(f"{len(failures)} problem{'s' if len(failures) > 1 else ''} with plugins (details on stderr)",
              file=sys.stdout)
    return 0
