"""Merge methods on hand-computed examples, equality with peft's functions, seeded DARE, the recipe CLI."""

import json
import math

import pytest
import torch
import yaml
from peft.utils import merge_utils

from suite.cli import main
from suite.core.errors import ConfigError
from suite.merging.methods import (
    MERGE_METHODS,
    get_merge_method,
    merge_state_dicts,
    slerp,
)

T = lambda *v: torch.tensor(v, dtype=torch.float32)  # noqa: E731


def merge(method, base, deltas, weights=None, seed=0, **parameters):
    tuned = [{"w": base + d} for d in deltas]
    return merge_state_dicts({"w": base}, tuned, method, weights, parameters, seed)["w"]


def test_linear_and_task_arithmetic_hand_values():
    base, d1, d2 = T(1, 1, 1), T(2, 0, -2), T(0, 4, 2)
    # linear, weights (1, 3): base + (1·d1 + 3·d2)/4 = 1 + (2, 12, 4)/4 = (1.5, 4, 2)
    assert merge("linear", base, [d1, d2], [1.0, 3.0]).tolist() == pytest.approx([1.5, 4.0, 2.0])
    # task arithmetic, λ = 0.5, weights (1, 1): 1 + 0.5·(2, 4, 0) = (2, 3, 1)
    assert merge("task-arithmetic", base, [d1, d2], scale=0.5).tolist() == pytest.approx([2.0, 3.0, 1.0])


def test_ties_trim_elect_and_disjoint_mean_by_hand():
    base = torch.zeros(4)
    d1, d2, d3 = T(4, -1, 3, 0.5), T(-2, -3, 1, 0.1), T(-1, 2, -5, 0.2)
    # trim to density 0.5 (top 2 of 4 by |δ|): d1 → (4, 0, 3, 0); d2 → (−2, −3, 0, 0); d3 → (0, 2, −5, 0)
    # elect sign by summed mass: (4−2, −3+2, 3−5, 0) = (2, −1, −2, 0) → signs (+, −, −, + [ties → +])
    # disjoint mean of agreeing entries: (4/1, −3/1, −5/1, 0)
    merged = merge("ties", base, [d1, d2, d3], density=0.5)
    assert merged.tolist() == pytest.approx([4.0, -3.0, -5.0, 0.0])


def test_magnitude_prune_hand_values():
    # each delta keeps its top half, then they are summed: (4, 0, 3, 0) + (−2, −3, 0, 0)
    merged = merge("magnitude-prune", torch.zeros(4), [T(4, -1, 3, 0.5), T(-2, -3, 1, 0.1)], density=0.5)
    assert merged.tolist() == pytest.approx([2.0, -3.0, 3.0, 0.0])


def test_dare_rescales_to_preserve_the_delta_in_expectation_and_is_seeded():
    base, delta = torch.zeros(2000), torch.linspace(-1, 1, 2000)
    first = merge("dare-linear", base, [delta], density=0.3, seed=7)
    assert torch.equal(first, merge("dare-linear", base, [delta], density=0.3, seed=7))
    assert not torch.equal(first, merge("dare-linear", base, [delta], density=0.3, seed=8))
    kept = first != 0
    assert 0.25 < kept.float().mean() < 0.35  # ~density of the entries survive…
    assert torch.allclose(first[kept], delta[kept] / 0.3)  # …rescaled by 1/density
    mean = torch.stack([merge("dare-linear", base, [delta], density=0.3, seed=s) for s in range(200)]).mean(0)
    assert (mean - delta).abs().mean() < 0.05  # unbiased: E[DARE(δ)] = δ


def test_slerp_endpoints_and_a_hand_example():
    a, b = T(1, 0), T(0, 1)
    assert slerp(a, b, 0.0).tolist() == pytest.approx([1, 0]) and slerp(a, b, 1.0).tolist() == pytest.approx([0, 1])
    # Ω = π/2, t = ½: sin(π/4)/sin(π/2)·(a + b) = (0.7071, 0.7071) — on the unit circle, unlike lerp's (½, ½)
    assert slerp(a, b, 0.5).tolist() == pytest.approx([math.sqrt(0.5)] * 2, abs=1e-6)
    assert slerp(T(1, 1), T(2, 2), 0.5).tolist() == pytest.approx([1.5, 1.5])  # colinear: linear fallback
    assert merge("slerp", torch.zeros(2), [a, b], t=0.5).tolist() == pytest.approx([math.sqrt(0.5)] * 2, abs=1e-6)


@pytest.mark.parametrize("method,peft_function,extra", [
    ("task-arithmetic", merge_utils.task_arithmetic, {}),
    ("ties", merge_utils.ties, {"density": 0.4}),
    ("magnitude-prune", merge_utils.magnitude_prune, {"density": 0.4}),
    ("dare-linear", merge_utils.dare_linear, {"density": 0.4}),
    ("dare-ties", merge_utils.dare_ties, {"density": 0.4}),
])
def test_equal_to_peft_on_the_same_inputs(method, peft_function, extra):
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=generator)
    deltas = [torch.randn(6, 5, generator=generator) for _ in range(3)]
    weights = [0.5, 1.0, 2.0]
    ours = merge(method, base, deltas, weights, seed=3, **extra)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)  # the first (only) tensor's seed
        theirs = base + peft_function(deltas, torch.tensor(weights), **extra)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_bad_merges_are_config_errors():
    base = {"w": torch.zeros(2)}
    with pytest.raises(ConfigError, match="unknown merge method .nope.; known: dare-linear"):
        get_merge_method("nope")
    with pytest.raises(ConfigError, match="parameters.dnsity"):
        merge_state_dicts(base, [base], "ties", parameters={"dnsity": 0.5})
    with pytest.raises(ConfigError, match="density: must be in"):
        merge_state_dicts(base, [base], "ties", parameters={"density": 1.5})
    with pytest.raises(ConfigError, match="exactly 2 models"):
        merge_state_dicts(base, [base], "slerp")
    with pytest.raises(ConfigError, match="'w' has shape"):
        merge_state_dicts(base, [{"w": torch.zeros(3)}], "linear")
    assert set(MERGE_METHODS) == {"linear", "task-arithmetic", "ties", "dare-linear", "dare-ties", "magnitude-prune",
                                  "slerp"}


def test_merge_recipe_end_to_end(tmp_path, capsys):
    from suite.modeling.models import load_model

    loaded = load_model("tiny-llama")
    paths = []
    for index in range(2):
        model = load_model("tiny-llama").model
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01 * (index + 1))
        model.save_pretrained(tmp_path / f"m{index}")
        loaded.tokenizer.save_pretrained(tmp_path / f"m{index}")
        paths.append(str(tmp_path / f"m{index}"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"base": "tiny-llama", "models": [{"model": p, "weight": 1.0} for p in paths],
                                      "method": "linear", "seed": 0, "out": str(tmp_path / "merged")}))
    assert main(["merge", str(recipe)]) == 0
    merged = load_model(str(tmp_path / "merged")).model
    name, base_value = next(iter(loaded.model.state_dict().items()))
    # the linear merge of +0.01 and +0.02 is +0.015
    assert torch.allclose(merged.state_dict()[name], base_value + 0.015, atol=1e-6)
    card = (tmp_path / "merged" / "README.md").read_text()
    assert "**linear**" in card and paths[0] in card
    assert json.loads((tmp_path / "merged" / "merge_recipe.json").read_text())["method"] == "linear"
    recipe.write_text(yaml.safe_dump({"base": "tiny-llama", "models": paths, "method": "ties",
                                      "parameters": {"k": 1}}))
    assert main(["merge", str(recipe)]) == 2
    assert "recipe.yaml: parameters.k: merge method 'ties' has no such parameter" in capsys.readouterr().err


def test_linear_weights_summing_to_zero_are_an_error():
    base = {"w": torch.zeros(2)}
    with pytest.raises(ConfigError, match="sum to zero"):
        merge_state_dicts(base, [base, base], "linear", weights=[1.0, -1.0])


def _save_narrow_llama(folder):
    """A Llama like tiny-llama but with half the hidden size: a different architecture for the same tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from suite.modeling.models import TINY_CONFIG, load_model

    loaded = load_model("tiny-llama")
    config = LlamaConfig(**{**loaded.model.config.to_dict(), **TINY_CONFIG, "hidden_size": 32})
    LlamaForCausalLM(config).save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return str(folder)


def test_bad_recipes_name_the_file_and_the_key(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"

    def error_for(payload) -> str:
        recipe.write_text(yaml.safe_dump(payload))
        assert main(["merge", str(recipe), "--out", str(tmp_path / "out")]) == 2
        return capsys.readouterr().err

    good = {"base": "tiny-llama", "models": ["tiny-llama", "tiny-llama"], "method": "linear"}
    assert "recipe.yaml: method: unknown merge method 'nope'; known: dare-linear" in error_for(
        {**good, "method": "nope"})
    assert "recipe.yaml: method: missing" in error_for({k: v for k, v in good.items() if k != "method"})
    assert "recipe.yaml: models[1].wieght: unknown key" in error_for(
        {**good, "models": ["tiny-llama", {"model": "tiny-llama", "wieght": 0.3}]})
    assert "recipe.yaml: models: merge method 'slerp' merges exactly 2 models" in error_for(
        {**good, "models": ["tiny-llama"], "method": "slerp"})
    narrow = _save_narrow_llama(tmp_path / "narrow")
    err = error_for({**good, "models": ["tiny-llama", narrow]})
    assert "recipe.yaml: models[1].model: models differ in architecture: 'lm_head.weight' has shape" in err
    assert not (tmp_path / "out").exists()
