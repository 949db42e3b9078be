"""Models; importing this package registers them in `rnnlab.registry.MODELS`."""

from ..registry import MODELS
from . import builders as _builders  # noqa: F401  (registers)
from .recurrent import RecurrentConfig, RecurrentNet

__all__ = ["MODELS", "RecurrentConfig", "RecurrentNet"]
