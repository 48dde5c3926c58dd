"""Deltas and their sparsity on hand-built tensors, a LoRA delta, and the `alignsuite delta` command."""

import json

import pytest
import torch

from suite.cli import main
from suite.core.errors import ConfigError
from suite.merging.delta import delta_report, sparsity_at, weight_deltas
from suite.modeling.weights import layer_index, module_type


def test_sparsity_hand_values():
    base = {"model.layers.0.self_attn.q_proj.weight": torch.tensor([[1.0, -1.0], [1.0, -1.0]]),  # mean |θ| = 1
            "model.layers.1.mlp.up_proj.weight": torch.tensor([10.0, 10.0]),  # mean |θ| = 10
            "model.norm.weight": torch.ones(2)}
    tuned = {"model.layers.0.self_attn.q_proj.weight": torch.tensor([[1.0, -0.995], [1.05, -1.5]]),
             "model.layers.1.mlp.up_proj.weight": torch.tensor([10.05, 10.0]),
             "model.norm.weight": torch.ones(2)}
    report = delta_report(base, tuned, relative_epsilons=(1e-2, 1e-1))
    # q_proj |δ| = (0, 0.005, 0.05, 0.5), ε = 0.01 / 0.1: small = 2 / 3;  up_proj |δ| = (0.05, 0), ε = 0.1 / 1: 2 / 2
    # norm |δ| = (0, 0): 2 / 2.  Overall 8 entries: (2+2+2)/8 and (3+2+2)/8; exact zeros: 1 + 1 + 2 = 4
    assert sparsity_at(report, 1e-2) == pytest.approx(6 / 8)
    assert sparsity_at(report, 1e-1) == pytest.approx(7 / 8)
    assert report["overall"]["exact_zero"] == pytest.approx(4 / 8)
    assert sparsity_at(report, 1e-2, "q_proj") == pytest.approx(2 / 4)
    assert report["by_module"]["up_proj"]["sparsity"][1]["fraction"] == pytest.approx(2 / 2)
    assert set(report["by_layer"]) == {"0", "1"}
    assert report["overall"]["mean_abs_delta"] == pytest.approx((0.005 + 0.05 + 0.5 + 0.05) / 8)
    # histogram over log10|δ| of the 4 nonzero entries: 0.005 ∈ [−3, −2), 0.05, 0.05 ∈ [−2, −1), 0.5 ∈ [−1, 0)
    counts = dict(zip(report["histogram"]["log10_edges"][1:], report["histogram"]["counts"][1:]))
    assert (counts[-2.0], counts[-1.0], counts[0.0]) == (1, 2, 1) and report["histogram"]["exact_zero"] == 4


def test_names_module_types_and_architecture_checks():
    assert module_type("model.layers.3.self_attn.k_proj.weight") == "k_proj"
    assert module_type("model.layers.3.post_attention_layernorm.weight") == "norm"
    assert module_type("model.embed_tokens.weight") == "embed_tokens"
    assert layer_index("model.layers.12.mlp.down_proj.weight") == 12 and layer_index("lm_head.weight") is None
    with pytest.raises(ConfigError, match="'w' has shape"):
        weight_deltas({"w": torch.zeros(2)}, {"w": torch.zeros(3)})
    with pytest.raises(ConfigError, match="only one of them"):
        weight_deltas({"w": torch.zeros(2)}, {"v": torch.zeros(2)})


def test_tied_weights_are_counted_once():
    shared = torch.ones(4)
    base = {"embed.weight": shared, "lm_head.weight": shared}
    tuned = {"embed.weight": shared + 1, "lm_head.weight": shared + 1}
    assert delta_report(base, tuned)["overall"]["entries"] == 4


def test_lora_delta_is_low_rank_and_dense_and_cli_writes_json_and_png(tmp_path, capsys):
    from suite.modeling.models import add_lora, load_model

    loaded = load_model("tiny-llama")
    model = add_lora(load_model("tiny-llama").model, {"r": 2, "target_modules": ["q_proj"]})
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    merged = model.merge_and_unload()
    report = delta_report(loaded.model, merged)
    q = report["by_module"]["q_proj"]
    assert q["exact_zero"] < 0.01  # B·A is dense…
    assert report["by_module"]["k_proj"]["exact_zero"] == 1.0  # …and only where the adapter is
    assert main(["delta", "tiny-llama", str(adapter), "--out", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / "delta.json").read_text())
    assert written["by_module"]["q_proj"]["exact_zero"] == pytest.approx(q["exact_zero"])
    assert (tmp_path / "out" / "delta_histogram.png").stat().st_size > 1000
    assert "sparsity |δ| <=" in capsys.readouterr().out


def test_lora_delta_is_peft_delta_weight_whether_merged_or_not():
    """δ of an in-memory PeftModel = B·A·scaling (peft's get_delta_weight) per target module, zero elsewhere."""
    from suite.modeling.models import add_lora, load_model

    base = load_model("tiny-llama").model
    model = add_lora(load_model("tiny-llama").model, {"r": 2, "target_modules": ["q_proj", "v_proj"]})
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    q_proj = model.get_base_model().model.layers[1].self_attn.q_proj
    expected = q_proj.get_delta_weight("default")
    unmerged = weight_deltas(base, model)
    assert torch.allclose(unmerged["model.layers.1.self_attn.q_proj.weight"][1], expected, atol=1e-6)
    assert unmerged["model.layers.1.self_attn.k_proj.weight"][1].abs().max() == 0
    assert not q_proj.merged  # the caller's model is untouched: peft merged a copy
    model.merge_adapter()
    merged = weight_deltas(base, model)
    assert torch.allclose(merged["model.layers.1.self_attn.q_proj.weight"][1], expected, atol=1e-6)
    assert set(merged) == set(unmerged)
