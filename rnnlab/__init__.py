"""rnnlab: a command-line lab for recurrent neural networks (RNN, LSTM, GRU) on PyTorch."""

__version__ = "0.1.0"

from . import models as _models  # noqa: E402,F401  (registers the models)
from . import tasks as _tasks  # noqa: E402,F401  (registers the tasks)
