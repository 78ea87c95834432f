"""``gid publish-space``: build the app's Hugging Face Space folder from this checkout, and upload it."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..deploy import space
from ..errors import GIDInputError


def _human(size: int) -> str:
    """Bytes as B / kB / MB / GB with three significant digits."""
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} GB"


def _default_root() -> Path:
    """The working directory if it holds space.yaml, else the checkout the package was installed from."""
    here = Path.cwd()
    return here if (here / space.MANIFEST_NAME).is_file() else Path(__file__).resolve().parents[2]


def _publish_space(args: argparse.Namespace) -> None:
    root = args.root or _default_root()
    if not args.dry_run and args.space_id is None:
        raise GIDInputError("give --space-id ORG/NAME to upload, or --dry-run to only list the files")
    if args.dry_run:
        files = (
            space.build_space(root, args.out, args.checkpoint) if args.out else space.plan_space(root, args.checkpoint)
        )
        for file in files:
            print(f"{_human(file.size):>9}  {file.path}")
        where = f"written to {args.out}" if args.out else "nothing written"
        print(f"{len(files)} files, {_human(sum(file.size for file in files))} ({where}; dry run: nothing uploaded)")
        return
    with tempfile.TemporaryDirectory(prefix="gid-space-") as scratch:
        folder = args.out or Path(scratch) / "space"
        files = space.build_space(root, folder, args.checkpoint)
        total = _human(sum(file.size for file in files))
        print(f"built {folder}: {len(files)} files, {total}; uploading to {args.space_id} ...")
        url = space.publish_space(folder, args.space_id, private=args.private)
    print(f"published {url}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add publish-space to the ``gid`` subcommands."""
    publish = commands.add_parser(
        "publish-space",
        help="build the Gradio app's Hugging Face Space folder and upload it",
        description="Build the Space folder: README.md (front matter generated from space.yaml), app.py, a "
        "requirements.txt for the Space, the gid_pipeline package, assets/ (examples with their licenses, and the "
        "checkpoint as assets/gid-default), LICENSE. Then upload it with huggingface_hub (token: HF_TOKEN or the "
        "saved login); the Space then holds exactly these files. --dry-run lists the files and sizes without any "
        "network access.",
    )
    publish.add_argument("--space-id", metavar="ORG/NAME", help="the Space to create or update")
    publish.add_argument("--dry-run", action="store_true", help="list the files and sizes; upload nothing")
    publish.add_argument("--out", type=Path, help="build the folder here (new or empty) and keep it")
    publish.add_argument(
        "--checkpoint", type=Path, help="GIDPipeline folder shipped as assets/gid-default (default: that folder)"
    )
    publish.add_argument("--root", type=Path, help="the repository checkout (default: here, or the package's)")
    publish.add_argument("--private", action="store_true", help="create the Space as private")
    publish.set_defaults(run=_publish_space)
