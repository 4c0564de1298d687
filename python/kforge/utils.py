"""utils.py -- pykeops.numpy.utils' IsGpuAvailable."""
from . import config


def IsGpuAvailable():
    return config.gpu_available
