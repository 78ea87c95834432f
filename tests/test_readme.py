"""The README's Python examples run as written (in a scratch folder holding the repository's assets)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
# Blocks that need the network (a Hub repo id) are not run here.
LOCAL = [block for block in BLOCKS if "org/name" not in block]


def test_the_readme_has_python_examples():
    assert len(LOCAL) >= 3


def test_readme_python_examples_run(tmp_path, monkeypatch):
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in LOCAL:  # in order, in one namespace: later examples use what earlier ones made
        exec(compile(block, "README.md", "exec"), namespace)
    for name in ("meadow.safetensors", "loop.gif", "poke.mp4", "loop.mp4", "tree.safetensors"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "my-checkpoint" / "model_index.json").is_file()
    assert namespace["out"].frames[0].shape[0] == 30
    assert tuple(namespace["displacements"].shape) == (150, 2, 160, 256)




def test_the_readme_lists_every_limit_with_its_value():
    import gid_pipeline.limits as limits

    readme = (ROOT / "README.md").read_text()
    names = [name for name in vars(limits) if name.isupper()]
    assert len(names) > 30
    for name in names:
        value = getattr(limits, name)
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        line = next((line for line in readme.splitlines() if f"`{name}`" in line), None)
        assert line is not None, f"{name} is missing from the README's limits table"
        assert shown in line, f"{name} = {shown} but the README says: {line}"
