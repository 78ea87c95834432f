"""The ``gid`` command line: each subcommand parses, calls the library, and reports; the math lives elsewhere.

One module per command group, each with ``register(commands)`` adding its subparsers; a subcommand's handler is
stored as ``run`` in its defaults. ``python -m gid_pipeline.cli`` (or ``accelerate launch -m gid_pipeline.cli``)
runs the same entry point.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import GIDInputError
from . import data, evaluate, features, generate, motion, space, textures, train

COMMAND_MODULES = (
    motion,
    data,
    textures,
    features,
    train,
    generate,
    evaluate,
    space,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gid", description="Generative Image Dynamics: seamless loops and interactive motion from images."
    )
    parser.add_argument("--version", action="version", version=f"gid_pipeline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gid``: returns 0 on success, 2 on bad input, 130 on Ctrl-C; never a traceback for those."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for reports
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except GIDInputError as error:
        print(f"gid {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gid {args.command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0

