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


# The cells that came after the chapter's (models/min_cells.py, lru.py, indrnn.py, exprnn.py).
@MODELS.register("mingru", config=RecurrentConfig)
def mingru(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """minGRU (Feng et al. 2024): gates from the input alone, trained as one parallel scan."""
    return RecurrentNet(cfg, spec, cell="mingru")


@MODELS.register("minlstm", config=RecurrentConfig)
def minlstm(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """minLSTM (Feng et al. 2024): normalised forget and input gates from the input, one parallel scan."""
    return RecurrentNet(cfg, spec, cell="minlstm")


@MODELS.register("lru", config=RecurrentConfig)
def lru(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Linear Recurrent Unit (Orvieto et al. 2023): diagonal complex linear recurrence, one parallel scan."""
    return RecurrentNet(cfg, spec, cell="lru")


@MODELS.register("indrnn", config=RecurrentConfig)
def indrnn(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """IndRNN (Li et al. 2018): element-wise recurrence with ReLU."""
    return RecurrentNet(cfg, spec, cell="indrnn")


@MODELS.register("exprnn", config=RecurrentConfig)
def exprnn(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """expRNN (Lezcano-Casado & Martinez-Rubio 2019): orthogonal recurrent matrix exp(A), A skew-symmetric."""
    return RecurrentNet(cfg, spec, cell="exprnn")


@MODELS.register("bimingru", config=BiRecurrentConfig)
def bimingru(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Bidirectional minGRU (bidirectional defaults to true)."""
    return RecurrentNet(cfg, spec, cell="mingru")


@MODELS.register("biminlstm", config=BiRecurrentConfig)
def biminlstm(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Bidirectional minLSTM (bidirectional defaults to true)."""
    return RecurrentNet(cfg, spec, cell="minlstm")


@MODELS.register("bilru", config=BiRecurrentConfig)
def bilru(cfg: RecurrentConfig, spec: ModelSpec) -> RecurrentNet:
    """Bidirectional LRU (bidirectional defaults to true)."""
    return RecurrentNet(cfg, spec, cell="lru")


@MODELS.register("bow", config=BagOfNgramsConfig)
def bow(cfg: BagOfNgramsConfig, spec: ModelSpec) -> BagOfNgrams:
    """Bag of words and hashed word pairs (fastText-style): the linear baseline for text."""
    return BagOfNgrams(cfg, spec)
