"""rnnlab: a command-line lab for recurrent neural networks (RNN, LSTM, GRU) on PyTorch."""

__version__ = "0.1.0"
