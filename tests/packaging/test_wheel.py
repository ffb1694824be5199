"""A wheel built from the repo holds `zafka` and only `zafka`, with every subpackage."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("actors", "transport", "coordination", "storage", "clients")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        timeout=120,
    )  # fmt: skip
    (path,) = out.glob("zafka-*.whl")
    return path


@pytest.mark.slow
def test_wheel_top_level_names_are_only_zafka(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"zafka"}
    for sub in SUBPACKAGES:
        assert f"zafka/{sub}/__init__.py" in names


def test_every_source_package_is_listed_for_the_wheel():
    """pyproject.toml names each package (the folders map onto `zafka.*`): a new folder left
    out would be missing from every wheel (and image) built from a clean checkout."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    for sub in SUBPACKAGES:
        for init in (ROOT / sub).glob("**/__init__.py"):
            package = ".".join(("zafka", *init.parent.relative_to(ROOT).parts))
            assert package in listed, f"add {package!r} to pyproject.toml's packages"


@pytest.mark.slow
def test_installed_wheel_imports_zafka_storage_but_not_bare_storage(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=120
    )
    probe = "import zafka.storage, zafka.clients, zafka.version; print(zafka.version.__version__)"
    ok = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bare = subprocess.run([python, "-c", "import storage"], cwd=tmp_path, capture_output=True)
    assert bare.returncode != 0
    assert b"ModuleNotFoundError" in bare.stderr
