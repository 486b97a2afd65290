"""The shipped stubs match the compiled module (mypy.stubtest), and the package type-checks."""

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python"


def test_stubtest_accepts_the_stubs():
    out = subprocess.run([sys.executable, "-m", "mypy.stubtest", "canary._canary"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_type_checks_with_its_stubs():
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "-p", "canary"], capture_output=True, text=True, cwd=PACKAGE, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_py_typed_ships_beside_the_stubs():
    assert (PACKAGE / "canary" / "py.typed").exists()
    assert (PACKAGE / "canary" / "_canary.pyi").exists()
