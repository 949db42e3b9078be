from __future__ import annotations

import pytest

from rnnlab.config import ModelConfig
from rnnlab.errors import UserError
from rnnlab.registry import MODELS, TASKS, Registry, suggest


def test_registered_vocabulary():
    assert MODELS.names()[:5] == ["rnn", "lstm", "gru", "bilstm", "bigru"]
    assert "long_dependency" in TASKS


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UserError) as e:
        MODELS.get("gur")
    assert "unknown model 'gur' (did you mean 'gru'?)" in str(e.value)
    assert "available: rnn, lstm, gru, bilstm, bigru" in str(e.value)
    assert suggest("zzzz", ["lstm", "gru"]) == ""


def test_duplicate_registration_is_refused():
    reg = Registry("thing")
    reg.register("a", config=ModelConfig)(lambda cfg: None)
    with pytest.raises(UserError, match="registered twice"):
        reg.register("a", config=ModelConfig)(lambda cfg: None)


def test_each_entry_says_where_it_came_from():
    assert {e.origin for e in MODELS} >= {"built-in"}
    assert MODELS.get("lstm").origin == TASKS.get("imdb").origin == "built-in"
