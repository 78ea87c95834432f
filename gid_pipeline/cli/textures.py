"""``gid texture-bank``: cut the texture bank's licensed photo crops out of their source packages."""

from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import positive_int


def _texture_bank(args: argparse.Namespace) -> None:
    # Imported here: only this command needs the bank builder.
    from ..procedural.texture_bank import build_texture_bank

    summary = build_texture_bank(
        args.output, crop_list=args.crops, source_root=args.source_root, cache_dir=args.cache, max_side=args.max_side
    )
    counts = ", ".join(f"{material} {count}" for material, count in summary.counts.items() if count)
    licences = ", ".join(f"{licence} {count}" for licence, count in summary.licences.items())
    print(
        f"wrote {summary.root}: {sum(summary.counts.values())} crops ({counts}); licences: {licences} "
        f"(notices in {summary.root / 'licences'})"
    )


def register(commands: argparse._SubParsersAction) -> None:
    """Add texture-bank to the ``gid`` subcommands."""
    from ..procedural.texture_bank import DEFAULT_CROP_LIST, MAX_SIDE_PX

    bank = commands.add_parser(
        "texture-bank",
        help="build the texture bank: labelled crops of freely licensed photos for the procedural scenes",
        description="Cut every crop of the crop list out of its photo, downsize it and write DIR/crops/<id>.png, the "
        "index DIR/bank.json and every source package's licence files under DIR/licences. The photos come from "
        "Debian packages (apt-get download, no root needed) and scikit-image's wheel (pip download), pinned to the "
        "versions the list names and kept in --cache; with --source-root they are read from a folder laid out like "
        "the extracted packages (<package>/<path inside it>) and nothing is downloaded. A previous bank in DIR is "
        "replaced; rebuilding is byte-identical.",
    )
    bank.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="bank directory (new, empty or a bank)"
    )
    bank.add_argument(
        "--crops",
        type=Path,
        default=DEFAULT_CROP_LIST,
        metavar="FILE",
        help="crop list JSON (default: the one shipped with gid)",
    )
    bank.add_argument(
        "--source-root", type=Path, metavar="DIR", help="read the photos from here instead of downloading them"
    )
    bank.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="where downloaded packages are kept (default: ${XDG_CACHE_HOME:-~/.cache}/gid_pipeline/texture-bank)",
    )
    bank.add_argument(
        "--max-side", type=positive_int, default=MAX_SIDE_PX, help=f"long side of the written crops, px ({MAX_SIDE_PX})"
    )
    bank.set_defaults(run=_texture_bank)
