"""untie: the head becomes a copy of the embeddings, the config says untied, and the function is unchanged."""

from __future__ import annotations

import pytest
import torch
from growtest import grow_in_memory, read_all

from growth.fixture import TinySpec, make_tiny
from growth.foundation.errors import PlanError


def test_untie_copies_embeddings(tiny_model):
    before = read_all(tiny_model)
    assert "lm_head.weight" not in before
    grown, after, _ = grow_in_memory(tiny_model, {"op": "untie"})
    assert torch.equal(after["lm_head.weight"], before["model.embed_tokens.weight"])
    assert grown.final.config["tie_word_embeddings"] is False
    assert grown.final.num_parameters == grown.source.num_parameters + 1024 * 128
    assert grown.steps[0].operator.preserves_function(grown.steps[0].config.params)


def test_untie_of_untied_model_is_an_error(tmp_path):
    untied = make_tiny(tmp_path / "untied", TinySpec(tied=False, layers=1))
    with pytest.raises(PlanError, match="already untied"):
        grow_in_memory(untied, {"op": "untie"})


def test_untie_takes_no_parameters():
    from growtest import plan_of

    from growth.foundation.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown key"):
        plan_of({"op": "untie", "copy": True})
