"""`pip install ./python` in a venv, then the package used from outside the source tree."""
import os
import shutil
import subprocess
import sys
import venv

import pytest

from conftest import ROOT


def test_pip_install_in_a_venv(tmp_path):
    try:
        import ensurepip  # noqa: F401  Debian ships it in python3-venv
    except ImportError:
        pytest.skip("no ensurepip (Debian: python3-venv) to make a venv with pip")
    env_dir = tmp_path / "venv"
    # The system's numpy and scipy (Debian's packages): the venv installs only kforge, offline.
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(str(env_dir))
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "python"), src,
                    ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build"))
    py = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                        "--no-build-isolation", str(src)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import numpy as np, kforge, kforge.numpy.cluster\n"
            "print(kforge.__file__)\n"
            "g = kforge.numpy.Genred('x*y', ['x=Vi(1)', 'y=Vj(1)'], 'Sum', axis=1)\n"
            "print(g(np.ones(2), np.arange(4.0)).ravel().tolist())\n")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    where, result = r.stdout.splitlines()
    assert where.startswith(str(env_dir)) and result == "[6.0, 6.0]"
    r = subprocess.run([py, "-m", "pip", "show", "kforge"], capture_output=True, text=True, env=env)
    assert "Version: 0.1.0" in r.stdout
