"""Tasks; importing this package registers them in `rnnlab.registry.TASKS`."""

from . import adding as _adding  # noqa: F401  (registers)
from . import copy_memory as _copy_memory  # noqa: F401  (registers)
from . import imdb as _imdb  # noqa: F401  (registers)
from . import long_dependency as _long_dependency  # noqa: F401  (registers)
from . import next_token as _next_token  # noqa: F401  (registers)
from . import tagging as _tagging  # noqa: F401  (registers)
from .base import Task, TokenTask

__all__ = ["Task", "TokenTask"]
