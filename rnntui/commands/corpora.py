"""`rnntui corpora`: list, inspect, download and register corpora; and the progress display for reading text."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from rnntui.errors import DataError
from rnntui.plugins import get_registry, reset_registry
from rnntui.util.options import parse_key_values
from rnntui.util.units import si

NOTE_PREFIX = "rnntui: note: "


def add_corpus_arguments(p: argparse.ArgumentParser) -> None:
    """How to read a corpus: shared by `corpora show` (and the same options as `rnntui train`)."""
    p.add_argument("--encoding", default="utf-8", help="text encoding of a file or directory (utf-8)")
    p.add_argument("--no-normalize-newlines", dest="normalize_newlines", action="store_false",
                   help="keep CRLF and CR line endings (by default they become LF)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="in a directory, read only files matching GLOB (repeatable), e.g. '*.py'")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="in a directory, leave out files and directories matching GLOB (repeatable)")
    p.add_argument("--corpus-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of a registered corpus, e.g. depth=12 for brackets (repeatable)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "corpora", help="list, inspect, download and register corpora",
        description="Without a subcommand: list the corpora (built in, downloadable, added by hand, plugins').",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    show = actions.add_parser("show", help="size, characters, sample lines, source and licence of a corpus",
                              description="Read a corpus (a name, a file, a directory or - for stdin) and "
                                          "describe it.")
    show.add_argument("corpus", metavar="NAME_OR_PATH")
    add_corpus_arguments(show)
    show.add_argument("--top", type=int, default=20, help="how many of the most frequent characters to list")
    show.add_argument("--lines", type=int, default=6, help="how many sample lines to print")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)

    fetch = actions.add_parser("fetch", help="download catalogue corpora (verified by sha256)",
                               description="Download corpora of the catalogue into the user cache directory. "
                                           "A file whose sha256 does not match is refused and nothing is kept.")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.add_argument("--url", help="download from this URL instead (a mirror); still verified")
    fetch.add_argument("--force", action="store_true", help="download again even if a verified copy exists")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (60)")
    fetch.set_defaults(run=run_fetch)

    add = actions.add_parser("add", help="register a file or directory placed by hand",
                             description="With a catalogue name: check the file against the catalogue's sha256 "
                                         "and store it as if fetched. With another name: remember the path, so "
                                         "`rnntui train NAME` reads it.")
    add.add_argument("name", metavar="NAME")
    add.add_argument("path", metavar="PATH")
    add.add_argument("--encoding", default="utf-8", help="text encoding of the file (utf-8)")
    add.set_defaults(run=run_add)

    remove = actions.add_parser("remove", help="forget a corpus added by hand, or delete a downloaded one")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(run=run_remove)

    cache = actions.add_parser("cache", help="show (or --clear) the cache of encoded texts",
                               description="Large texts are encoded once into the cache directory and reused. "
                                           "Downloaded corpora are kept by --clear.")
    cache.add_argument("--clear", action="store_true", help="delete every cached encoding")
    cache.set_defaults(run=run_cache)


# -- progress ----------------------------------------------------------------------------------------------------

STAGES = {"hash": "checking", "count": "reading", "encode": "encoding", "download": "downloading"}


@contextlib.contextmanager
def text_progress(what: str = "", quiet: bool = False):
    """A callback for rnntui.core's TextProgress reports: a transient rich progress bar on stderr (when it is a
    terminal) and notes printed as one line each."""
    from rich.console import Console
    from rich.progress import (
        BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
    )

    err = Console(stderr=True, highlight=False)
    bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), TaskProgressColumn(),
                   DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=True,
                   disable=quiet or not err.is_terminal)
    tasks: dict[str, int] = {}

    def callback(event) -> None:
        if event.stage == "note":
            bar.console.print(f"{NOTE_PREFIX}{event.message}", markup=False)
            return
        if event.stage not in tasks:
            label = STAGES.get(event.stage, event.stage)
            tasks[event.stage] = bar.add_task(f"{label} {what}".strip(), total=event.total)
        bar.update(tasks[event.stage], completed=event.done, total=event.total)

    with bar:
        yield callback


# -- list --------------------------------------------------------------------------------------------------------


def _human(n: int | None, unit: str = "") -> str:
    return "?" if n is None else si(n, 3, unit)


def run_list(args: argparse.Namespace) -> int:
    from rnntui.plugins.listing import corpus_rows  # lazy: it imports torch, which parsing options must not

    rows = corpus_rows(get_registry())
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    cells = [(r["name"], r["plugin"], _human(r["size"]), "yes" if r["offline"] else "no (fetch)" if r["url"] else "no",
              r["description"].split(". ")[0]) for r in rows]
    table = Table()
    for k, column in enumerate(("name", "plugin", "size", "offline")):
        table.add_column(column, no_wrap=True, min_width=max([len(column)] + [len(c[k]) for c in cells]))
    fixed = sum(max([len(h)] + [len(c[k]) for c in cells]) for k, h in enumerate(("name", "plugin", "size", "offline")))
    room = max(16, console.width - fixed - 16)  # borders and padding of five columns
    table.add_column("description", no_wrap=True, overflow="ellipsis", max_width=room)
    for c in cells:
        table.add_row(*c[:4], c[4] if len(c[4]) <= room else c[4][: room - 1] + "…")
    console.print(table)
    if any(r["url"] and not r["offline"] for r in rows):
        console.print("download one with `rnntui corpora fetch NAME` (verified by sha256), or place a copy by hand "
                      "with `rnntui corpora add NAME PATH`.")
    console.print("`rnntui corpora show NAME` describes one; `rnntui train NAME_OR_PATH` trains on it "
                  "(a name, a file, a directory, or - for stdin).")
    return 0


# -- show --------------------------------------------------------------------------------------------------------


def _char_label(ch: str) -> str:
    return {"\n": "\\n", "\t": "\\t", " ": "' '", "\r": "\\r"}.get(ch, ch if ch.isprintable() else repr(ch))


def sample_lines(vocab, ids, n_lines: int, width: int = 100) -> list[str]:
    """A few whole lines from spread-out places of an encoded text (up to three places, never overlapping)."""
    if n_lines <= 0 or not len(ids):
        return []
    spots = max(1, min(3, n_lines))
    per = -(-n_lines // spots)
    lines: list[str] = []
    end = 0  # where the previous place's lines stopped
    for k in range(spots):
        start = max(int(len(ids) * k / spots), end)
        if start >= len(ids):
            break
        text = vocab.decode(ids[start : start + 4000])
        if start > 0 and vocab.decode(ids[start - 1 : start]) != "\n":
            cut = text.find("\n")  # drop the partial first line
            if cut < 0:
                continue
            start, text = start + cut + 1, text[cut + 1 :]
        taken = 0
        for line in text.split("\n")[:-1]:  # whole lines only
            start += len(line) + 1
            if line.strip():
                lines.append(line if len(line) <= width else line[: width - 1] + "…")
                taken += 1
                if taken == per:
                    break
        end = start
    return lines[:n_lines]


def corpus_report(spec: str, encoding: str = "utf-8", normalize_newlines: bool = True, include=(), exclude=(),
                  options=None, top: int = 20, lines: int = 6, progress=None) -> dict:
    """What `rnntui corpora show` prints about a corpus name, a path or "-": size, characters, frequent characters,
    sample lines, how it was read, and its description, source and licence when it is a registered corpus."""
    from rnntui.corpora.textcache import load_encoded  # lazy: it imports torch, which parsing options must not

    registry = get_registry()
    encoded = load_encoded(spec, encoding, normalize_newlines, include, exclude, options, progress,
                           corpora=registry.corpora)
    corpus = registry.corpora[spec] if spec in registry.corpora and not Path(spec).expanduser().exists() else None
    order = sorted(range(len(encoded.counts)), key=lambda i: (-int(encoded.counts[i]), int(encoded.code_points[i])))
    n = int(encoded.counts.sum())
    frequent = [{"char": chr(int(encoded.code_points[i])), "count": int(encoded.counts[i]),
                 "share": int(encoded.counts[i]) / n} for i in order[:top]]
    return {
        "name": encoded.name,
        "plugin": registry.owners.get(("corpus", spec)) if corpus else None,
        "description": corpus.description if corpus else None,
        "source": corpus.source if corpus else encoded.source.get("path", encoded.name),
        "licence": (corpus.licence or None) if corpus else None,
        "chars": len(encoded), "distinct": len(encoded.code_points), "vocab_size": len(encoded.vocab),
        "dtype": encoded.vocab.dtype.name, "frequent": frequent,
        "sample_lines": sample_lines(encoded.vocab, encoded.ids, lines),
        "encoding": encoded.source.get("encoding"), "normalize_newlines": normalize_newlines,
        "read": encoded.source, "notes": list(encoded.notes),
        "skipped": [list(s) for s in encoded.skipped], "fingerprint": encoded.fingerprint,
        "cache": str(encoded.cache_path) if encoded.cache_path else None,
    }


def _not_downloaded(name: str) -> dict | None:
    from rnntui.corpora.catalogue import catalogue  # lazy: reading the catalogue waits for the command

    entry = catalogue().get(name)
    if entry is None or entry.downloaded:
        return None
    return {"name": name, "description": entry.description, "source": entry.url, "licence": entry.licence,
            "bytes": entry.bytes, "chars": entry.chars, "sha256": entry.sha256, "downloaded": False,
            "fetch": f"rnntui corpora fetch {name}"}


def run_show(args: argparse.Namespace) -> int:
    if args.corpus in get_registry().corpora and not Path(args.corpus).exists() and \
            (info := _not_downloaded(args.corpus)):
        if args.json:
            print(json.dumps(info, indent=1))
            return 0
        print(f"{info['name']}: not downloaded yet (run `{info['fetch']}`, or offline: "
              f"rnntui corpora add {info['name']} PATH)")
        print(f"  {info['description']}")
        print(f"source:   {info['source']}\nlicence:  {info['licence']}\nsize:     {info['chars']:,} characters, "
              f"{info['bytes']:,} bytes\nsha256:   {info['sha256']}")
        return 0
    options = parse_key_values(args.corpus_option, "--corpus-option")
    with text_progress(args.corpus, quiet=args.json) as progress:
        info = corpus_report(args.corpus, args.encoding, args.normalize_newlines, args.include, args.exclude, options,
                        args.top, args.lines, None if args.json else progress)
    if args.json:
        print(json.dumps(info, indent=1, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.markup import escape

    out = Console(highlight=False, soft_wrap=True)
    title = info["name"] + (f"  (plugin: {info['plugin']})" if info["plugin"] else "")
    out.print(f"[bold]{escape(title)}[/]")
    if info["description"]:
        out.print(f"  {escape(info['description'])}")
    out.print(f"source:      {escape(str(info['source']))}")
    if info["licence"]:
        out.print(f"licence:     {escape(info['licence'])}")
    out.print(f"size:        {info['chars']:,} characters")
    vocab = f"{info['distinct']:,} distinct characters ({info['dtype']} ids)"
    if info["vocab_size"] != info["distinct"]:
        vocab += f"; vocabulary {info['vocab_size']:,} (rarest mapped to U+FFFD)"
    out.print(f"characters:  {vocab}")
    newline_rule = ("CRLF and CR normalised to LF (--no-normalize-newlines keeps them)" if info["normalize_newlines"]
                    else "kept as they are (CRLF / CR not normalised)")
    encoding = info["encoding"] or "text from a plugin (already decoded)"
    out.print(f"reading:     {escape(encoding)}; line endings {newline_rule}; a leading BOM is dropped")
    frequent = "  ".join(f"{escape(_char_label(f['char']))} {100 * f['share']:.1f}%" for f in info["frequent"])
    out.print(f"most frequent: {frequent}")
    if info["cache"]:
        out.print(f"cached:      {escape(info['cache'])}")
    for note in info["notes"]:
        out.print(f"note:        {escape(note)}")
    out.print("sample lines:")
    for line in info["sample_lines"]:
        out.print(f"  │ {escape(line)}")
    return 0


# -- fetch, add, remove, cache -----------------------------------------------------------------------------------


def run_fetch(args: argparse.Namespace) -> int:
    from rnntui.corpora.catalogue import catalogue_entry  # lazy: torch (through core.data) waits for the command
    from rnntui.corpora.fetch import fetch  # lazy: likewise

    if args.url and len(args.names) > 1:
        raise DataError("--url downloads one corpus; give a single NAME")
    for name in args.names:
        entry = catalogue_entry(name)
        if entry.downloaded and not args.force:
            print(f"{name}: already downloaded and verified ({entry.path})")
            continue
        with text_progress(name) as progress:
            path = fetch(name, args.url, progress, args.force, args.timeout)
        print(f"{name}: downloaded, sha256 verified, stored in {path}; train with: rnntui train {name}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    from rnntui.corpora.fetch import add  # lazy: torch (through core.data) waits for the command

    registry = get_registry()
    taken = {name: registry.owners.get(("corpus", name), "a plugin") for name in registry.corpora}
    print(add(args.name, args.path, args.encoding, taken=taken))
    reset_registry()  # the next registry lists the new corpus
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from rnntui.corpora.fetch import remove  # lazy: torch (through core.data) waits for the command

    print(remove(args.name))
    reset_registry()
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from rnntui.corpora.textcache import cache_entries, clear_cache, text_cache_dir  # lazy: torch waits too

    if args.clear:
        freed = clear_cache()
        print(f"cleared the text cache in {text_cache_dir()} ({_human(freed, 'B')} freed)")
        return 0
    entries = cache_entries()
    if not entries:
        print(f"no cached encodings in {text_cache_dir()}")
        return 0
    for e in entries:
        print(f"{e['name']}: {e['chars']:,} characters, vocabulary {e['vocab_size']}, {_human(e['bytes'], 'B')} "
              f"on disk  {e['path']}")
    print(f"total {_human(sum(e['bytes'] for e in entries), 'B')}; `rnntui corpora cache --clear` removes them")
    return 0
