"""Tasks; importing this package registers them in `rnnlab.registry.TASKS`."""

from ..registry import TASKS
from . import long_dependency as _long_dependency  # noqa: F401  (registers)
from . import gradient_probe as _gradient_probe  # noqa: F401  (registers)
from . import imdb as _imdb  # noqa: F401  (registers)
from . import next_token as _next_token  # noqa: F401  (registers)
from .base import Batch, ModelSpec, Task

__all__ = ["TASKS", "Task", "Batch", "ModelSpec"]
