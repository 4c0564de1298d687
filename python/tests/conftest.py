"""conftest.py -- the kforge package of this tree, over this tree's libkforge.so.0.

KFORGE_LIB defaults to build/libkforge.so.0 (tests/python.sh builds it) and the
kernel cache to a private directory unless the caller set one (make test shares
its own across phases), so the tests never touch ~/.cache/kforge.
"""
import os
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("KFORGE_LIB", os.path.join(ROOT, "build", "libkforge.so.0"))
if "KFORGE_CACHE_DIR" not in os.environ:
    os.environ["KFORGE_CACHE_DIR"] = tempfile.mkdtemp(prefix="kforge-pytest-")
sys.path.insert(0, os.path.join(ROOT, "python"))

KFORGE_BIN = os.path.join(ROOT, "build", "kforge")


@pytest.fixture
def kforge_bin():
    if not os.access(KFORGE_BIN, os.X_OK):
        pytest.skip("%s is not built" % KFORGE_BIN)
    return KFORGE_BIN


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(7)
