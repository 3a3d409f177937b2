"""Every install comes from a lock file, and the lock files are what `make lock` writes from
pyproject.toml and the layer's requirements.in: a dependency added to one and not locked fails
here (in a copy of the repository, with the project's own venv and its uv)."""

import shutil
import subprocess

import pytest

from local.template import ROOT
from tests.conftest import HOST_ENVIRONMENT

pytestmark = pytest.mark.slow
LOCKS = ["layers/shared/requirements.txt", "requirements/dev.txt", "requirements/sam.txt", "requirements/checkov.txt"]


def test_the_lock_files_are_what_make_lock_writes(tmp_path):
    for name in ["Makefile", "pyproject.toml", "layers/shared/requirements.in", *LOCKS]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    result = subprocess.run(
        # The project's venv as it is (-o: never remade here), its uv writing the copy's locks.
        ["make", "--no-print-directory", "-o", f"{ROOT / '.venv'}/.installed", "lock", f"VENV={ROOT / '.venv'}"],
        cwd=tmp_path,
        env=HOST_ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in LOCKS:
        assert (tmp_path / name).read_text() == (ROOT / name).read_text(), f"{name} is not what make lock writes"


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split()[0].split("==", 1) for line in lines if line and line[0].isalpha())


def test_every_package_the_layer_ships_is_pinned_and_the_dev_venv_installs_the_same_versions():
    layer, dev = _pins(LOCKS[0]), _pins(LOCKS[1])
    assert {"pydantic", "aws-lambda-powertools", "pydantic-core", "typing-extensions"} <= layer.keys()
    assert {name: (version, dev[name]) for name, version in layer.items() if dev.get(name, version) != version} == {}
