"""config.py -- what pykeops.config tells a script: whether a GPU is usable."""
import ctypes

from . import _lib


def _gpu_available():
    n = ctypes.c_int()
    with _lib.LOCK:
        return _lib.lib.kf_device_count(_lib.ctx(), ctypes.byref(n)) == _lib.KF_OK and n.value > 0


# True when kforge's CUDA backend finds a device (kf_device_count), as pykeops.config's.
gpu_available = _gpu_available()
