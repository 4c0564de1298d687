"""kforge.numpy.utils -- pykeops.numpy.utils' IsGpuAvailable."""
from ..utils import IsGpuAvailable

__all__ = ["IsGpuAvailable"]
