"""Build (and publish) the Hugging Face Space folder of the app from a checkout of this repository.

The Space is a plain folder: ``README.md`` whose front matter is generated from ``space.yaml`` (Spaces read their
settings only from there), ``app.py``, a ``requirements.txt`` for the Space, the ``gid_pipeline`` package (its
Python files; the app imports it from the folder), ``assets/`` with the example inputs, their licenses and the
default checkpoint, and the project's ``LICENSE``. ``plan_space`` says what would be written without touching
anything, ``build_space`` writes it, ``publish_space`` uploads a built folder with ``HfApi.upload_folder``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GIDInputError
from ..extras import require

MANIFEST_NAME = "space.yaml"
# Front-matter keys every Space of this project needs (https://huggingface.co/docs/hub/spaces-config-reference).
REQUIRED_KEYS = ("title", "sdk", "sdk_version", "app_file", "python_version", "license", "short_description")
# Spaces cut short descriptions longer than this.
MAX_SHORT_DESCRIPTION = 60
# Files of a checkpoint folder that travel (what GIDPipeline.download fetches from the Hub too).
CHECKPOINT_SUFFIXES = (".json", ".safetensors", ".txt", ".md")
# Stored with Git LFS on the Hub: weights, pictures and videos.
LFS_PATTERNS = ("*.safetensors", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.mp4", "*.avi")

README_BODY = """\
# {title}

An open implementation of **Generative Image Dynamics** (Li, Tucker, Snavely, Holynski, CVPR 2024,
[arXiv 2309.07906](https://arxiv.org/abs/2309.07906)): from one still photo of a tree, a flower, grass or cloth, a
diffusion model predicts how every pixel oscillates (a *spectral volume*), which plays as a seamlessly looping video
or answers a poke.

- **Loop**: upload a photo (or pick an example) and press *Animate*: a looping video and its spectral volume
  (`.safetensors`, replay it with `gid render`).
- **Click to poke**: click a point of the photo, choose a direction and a force, press *Poke*: the scene sways and
  settles. The motion is predicted once per photo; later pokes are instant.
- **From video**: a short clip of something swaying (camera still) gives a loop measured from the clip itself, which
  the poke tab can then use.

The same functions are callable with `gradio_client` (`/loop`, `/poke`, `/from_video`), and everything runs
locally with the `gid_pipeline` package (`python app.py`).

## Notices

- Code: Apache-2.0 (`LICENSE`). The example photos and clip keep their own licenses (GPL-2+, LGPL-3, Apache-2.0 AND
  BSD-3-Clause), listed file by file in `assets/LICENSES.md`, with their copyright notices beside them.
- The interactive dynamics follow Davis et al.'s image-space modal bases, which MIT has patented (US 10,354,397).
  Check whether that patent affects your use of the click-to-poke feature.
- This project implements a published method; it is not affiliated with the paper's authors or Google.

```bibtex
@inproceedings{{li2024generative,
  title     = {{Generative Image Dynamics}},
  author    = {{Li, Zhengqi and Tucker, Richard and Snavely, Noah and Holynski, Aleksander}},
  booktitle = {{CVPR}},
  year      = {{2024}}
}}
```
"""


@dataclass(frozen=True)
class SpaceFile:
    """One file of the Space folder.

    Attributes:
        path: where it goes, relative to the Space's root, with forward slashes.
        source: the file it is copied from, or None for a generated file.
        content: the generated file's bytes (None for a copied file).
    """

    path: str
    source: Path | None = None
    content: bytes | None = None

    @property
    def size(self) -> int:
        """Bytes."""
        return len(self.content) if self.content is not None else self.source.stat().st_size  # type: ignore[union-attr]


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check space.yaml: a mapping with the required keys, ``sdk: gradio`` and a short enough description."""
    path = Path(path)
    if not path.is_file():
        raise GIDInputError(f"no Space manifest at {path}: run from a checkout of the repository or pass --root")
    require("yaml")
    import yaml

    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise GIDInputError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(manifest, dict):
        raise GIDInputError(f"{path} must be a mapping of Space settings, got {type(manifest).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise GIDInputError(f"{path} lacks {', '.join(missing)}")
    if manifest["sdk"] != "gradio":
        raise GIDInputError(f"{path}: the app is a Gradio app, so sdk must be gradio, got {manifest['sdk']!r}")
    if len(str(manifest["short_description"])) > MAX_SHORT_DESCRIPTION:
        raise GIDInputError(f"{path}: short_description must be at most {MAX_SHORT_DESCRIPTION} characters")
    return manifest


def readme_text(manifest: dict[str, Any]) -> str:
    """The Space's README.md: the manifest as YAML front matter, then the body."""
    import yaml

    front = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{front}---\n\n{README_BODY.format(title=manifest['title'])}"


def space_requirements(requirements: Path) -> str:
    """The Space's requirements.txt: the project's runtime requirements without gradio.

    Spaces install ``gradio==sdk_version`` themselves (with the extras they need); a second gradio requirement
    could only disagree with it.
    """
    lines = ["# Installed by the Space next to gradio (which comes from sdk_version in README.md)."]
    for line in requirements.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name and not name.lower().startswith("gradio"):
            lines.append(name)
    return "\n".join(lines) + "\n"


def _files_under(folder: Path, prefix: str, suffixes: Sequence[str] | None = None) -> list[SpaceFile]:
    """Every file under folder (no caches, no hidden files), placed under prefix; only suffixes if given."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if suffixes is not None and path.suffix.lower() not in suffixes:
            continue
        files.append(SpaceFile(f"{prefix}/{relative.as_posix()}", source=path))
    return files


def plan_space(root: str | Path, checkpoint: str | Path | None = None) -> list[SpaceFile]:
    """The files of the Space built from the checkout at root, in the order they are written.

    Args:
        root: the repository checkout (holds space.yaml, app.py, requirements.txt, gid_pipeline/, assets/).
        checkpoint: the GIDPipeline folder shipped as assets/gid-default (default: root/assets/gid-default).

    Raises:
        GIDInputError: something the Space needs is missing (the message names it).
    """
    root = Path(root)
    manifest = load_manifest(root / MANIFEST_NAME)
    checkpoint = Path(checkpoint) if checkpoint is not None else root / "assets" / "gid-default"
    if not (checkpoint / "model_index.json").is_file():
        raise GIDInputError(
            f"no checkpoint at {checkpoint} (model_index.json missing): the Space ships the model; train one or pass "
            f"--checkpoint DIR (a folder written by GIDPipeline.save_pretrained)"
        )
    for needed in ("app.py", "requirements.txt", "LICENSE", "gid_pipeline/__init__.py", "assets/LICENSES.md"):
        if not (root / needed).is_file():
            raise GIDInputError(f"{root / needed} is missing: run from a checkout of the repository or pass --root")
    gitattributes = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
    return [
        SpaceFile("README.md", content=readme_text(manifest).encode()),
        SpaceFile(".gitattributes", content=gitattributes.encode()),
        SpaceFile(manifest["app_file"], source=root / "app.py"),
        SpaceFile("requirements.txt", content=space_requirements(root / "requirements.txt").encode()),
        SpaceFile("LICENSE", source=root / "LICENSE"),
        *_files_under(root / "gid_pipeline", "gid_pipeline", (".py", ".js")),  # .js: the live poke (package data)
        SpaceFile("assets/LICENSES.md", source=root / "assets" / "LICENSES.md"),
        *_files_under(root / "assets" / "examples", "assets/examples"),
        *_files_under(checkpoint, "assets/gid-default", CHECKPOINT_SUFFIXES),
    ]


def build_space(root: str | Path, output: str | Path, checkpoint: str | Path | None = None) -> list[SpaceFile]:
    """Write the Space folder at output (which must be empty or not exist); returns what was written."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise GIDInputError(f"{output} exists and is not an empty folder; choose a new --out")
    files = plan_space(root, checkpoint)
    for file in files:
        target = output / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if file.content is not None:
            target.write_bytes(file.content)
        else:
            shutil.copyfile(file.source, target)  # type: ignore[arg-type]
    return files


def publish_space(folder: str | Path, space_id: str, token: str | None = None, private: bool = False) -> str:
    """Upload a built Space folder to the Hub as the Space space_id ("org/name"), created if new; returns its URL.

    The Space then holds exactly the folder's files: remote files the folder lacks are deleted in the same commit.
    The token defaults to HF_TOKEN or the saved login.
    """
    from huggingface_hub import HfApi

    if space_id.count("/") != 1 or not all(space_id.split("/")):
        raise GIDInputError(f"--space-id must look like ORG/NAME, got {space_id!r}")
    api = HfApi(token=token)
    try:
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=space_id,
            folder_path=str(folder),
            repo_type="space",
            commit_message="Publish the Generative Image Dynamics app",
            delete_patterns="*",
        )
    except Exception as error:  # the network's and the Hub's errors come from several libraries: report them all
        raise GIDInputError(f"cannot publish to the Space {space_id}: {type(error).__name__}: {error}") from None
    return f"https://huggingface.co/spaces/{space_id}"
