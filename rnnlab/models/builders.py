"""The registered models: thin builders over RecurrentNet, and the bag-of-n-grams baseline.

    rnnlab list        # shows them with their parameters
    rnnlab compare lstm gru rnn
"""

from __future__ import annotations

from ..registry import MODELS
from ..contract import ModelSpec
from .bag_of_ngrams import BagOfNgrams, BagOfNgramsConfig
from .recurrent import RecurrentConfig, RecurrentNet

__all__ = ["BiRecurrentConfig"]


class BiRecurrentConfig(RecurrentConfig):
    bidirectional: bool = True


@MODELS.register("rnn", config=RecurrentConfig)
def rnn(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Vanilla (Elman) RNN with tanh."""
    return RecurrentNet(cfg, spec, cell="rnn")


@MODELS.register("lstm", config=RecurrentConfig)
def lstm(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """LSTM (Hochreiter & Schmidhuber 1997)."""
    return RecurrentNet(cfg, spec, cell="lstm")


@MODELS.register("gru", config=RecurrentConfig)
def gru(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """GRU (Cho et al. 2014)."""
    return RecurrentNet(cfg, spec, cell="gru")


@MODELS.register("bilstm", config=BiRecurrentConfig)
def bilstm(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Bidirectional LSTM (bidirectional defaults to true)."""
    return RecurrentNet(cfg, spec, cell="lstm")


@MODELS.register("bigru", config=BiRecurrentConfig)
def bigru(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Bidirectional GRU (bidirectional defaults to true)."""
    return RecurrentNet(cfg, spec, cell="gru")


@MODELS.register("bow", config=BagOfNgramsConfig)
def bow(cfg: BagOfNgramsConfig, spec: ModelSpec) -> BagOfNgrams:
    """Bag of words and hashed word pairs (fastText-style): the linear baseline for text."""
    return BagOfNgrams(cfg, spec)
