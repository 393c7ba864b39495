"""`rnntui [PATH_OR_CORPUS] [options]` (also `rnntui app …`): open the app and start training at once."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnntui.commands.train import add_model_arguments, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "app", help="open the app: live loss curves, samples, a prompt box (what `rnntui` alone does)",
        description="Open the rnntui app and start training at once: `rnntui` trains the default preset on the "
                    "default corpus; `rnntui PATH_OR_CORPUS [options]` trains on that; `rnntui RUN_DIR` opens a "
                    "past run. The options are those of `rnntui train`.")
    p.add_argument("corpus", nargs="?", metavar="PATH_OR_CORPUS",
                   help="a text file, a corpus name (see `rnntui corpora`) or a run directory to open "
                        "(default: python-docs)")
    add_model_arguments(p)
    p.add_argument("--no-start", action="store_true", help="open the app without starting to train (space starts)")
    p.add_argument("--run-dir", help="where to keep the run (default: a new directory under `rnntui runs`)")
    p.set_defaults(run=run)


def is_run_dir(path: str | None) -> bool:
    return bool(path) and Path(path).is_dir() and (Path(path) / "config.json").is_file()


def run(args: argparse.Namespace) -> int:
    from rnntui.engine import RunSpec  # lazy: Textual and the engine load only when the app opens
    from rnntui.tui.app import RnnApp

    if is_run_dir(args.corpus):
        app = RnnApp(open_run=args.corpus)
    else:
        spec = RunSpec(config=config_from_args(args).to_json(), run_dir=args.run_dir)
        app = RnnApp(spec, start=not args.no_start)
    app.run()
    return app.return_code or 0
