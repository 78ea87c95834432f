"""The ``gid`` command line: each subcommand parses, calls the library, and reports; the math lives elsewhere.

One module per command group, each with ``register(commands)`` adding its subparsers; a subcommand's handler is
stored as ``run`` in its defaults. ``python -m gid_pipeline.cli`` (or ``accelerate launch -m gid_pipeline.cli``)
runs the same entry point.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import __version__
from ..errors import GIDInputError
from ..files import check_output
from . import data, evaluate, features, generate, motion, space, textures, train

# Arguments that name a file (or, for these commands, a folder) a command writes: checked before any work.
OUTPUT_FILES = ("output", "spectrum_out")
OUTPUT_FOLDER_COMMANDS = ("prepare-data", "procedural-videos", "texture-bank", "convert-encoder", "train",
                          "build-pipeline", "evaluate", "evaluate-renderer")  # fmt: skip


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (atomic writers delete their partial files)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


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


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the usage itself is what --help is for); its subparsers too."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for name in OUTPUT_FILES:
            value = getattr(args, name, None)
            if isinstance(value, Path):
                check_output(value, folder=name == "output" and args.command in OUTPUT_FOLDER_COMMANDS)
        run(args)
    except GIDInputError as error:
        print(f"gid {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:
            raise
        # Writing failed after the checks (a full disk, a folder removed meanwhile): the atomic writers left nothing.
        print(f"gid {args.command}: error: cannot write {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"gid {args.command}: terminated; nothing half-written was left behind", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"gid {args.command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0

