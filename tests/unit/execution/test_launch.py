"""Training under `accelerate launch`: two CPU processes (gloo DDP) reach the single-process result at the
same global batch; the launcher's settings, configs and command-line errors."""

import json

import pytest
import torch
import yaml
from support import preference_rows

from suite.cli import main as cli_main
from suite.core.errors import ConfigError
from suite.data.records import PairwiseRecord
from suite.execution.launch import (
    LAUNCH_CONFIGS,
    AccelerateLauncher,
    resolve_accelerate_config,
)
from suite.method.registry import get_method
from suite.modeling.models import load_model
from suite.modeling.reference import ReferenceCache
from suite.training.trainer import (
    TrainSettings,
    attach_reference_logps,
    build_examples,
    train,
)


def _settings(**changes):
    values = dict(max_steps=3, per_device_batch_size=4, gradient_accumulation_steps=1, learning_rate=1e-3,
                  lr_scheduler="cosine", warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, seed=0)
    return TrainSettings(**{**values, **changes})


def _losses(folder):
    return [r["loss"] for r in map(json.loads, (folder / "train_log.jsonl").read_text().splitlines()) if "loss" in r]


def test_two_gloo_processes_match_one_process_at_the_same_global_batch(tmp_path):
    rows = preference_rows(12)
    pairs = [PairwiseRecord(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
    method = get_method("dpo")
    results = {}
    for name, launcher in (("single", None), ("ddp", AccelerateLauncher(2))):
        loaded = load_model("tiny-llama")  # the same seeded weights each time
        examples = build_examples(pairs, loaded.tokenizer, 64)
        attach_reference_logps(examples, ReferenceCache(tmp_path / "cache", "tiny"), loaded.model,
                               loaded.tokenizer.pad_token_id, 4)
        out = tmp_path / name
        summary = (launcher or train)(loaded.model, loaded.tokenizer, method, {"beta": 0.1}, examples, _settings(), out)
        results[name] = (summary, _losses(out), loaded.model.state_dict())
    (single, single_losses, single_state), (ddp, ddp_losses, ddp_state) = results["single"], results["ddp"]
    assert ddp["launcher"] == {"name": "accelerate", "num_processes": 2, "config_file": None}
    assert ddp["steps"] == single["steps"] == 3
    # Each step sees the same 4 pairs (2 per process); the all-reduced mean of two 2-pair gradients is the
    # 4-pair gradient up to float32 summation order (~1e-7 relative), so per-step losses agree to 1e-5.
    assert len(ddp_losses) == 3 and ddp_losses == pytest.approx(single_losses, abs=1e-5)
    assert single_losses[-1] < single_losses[0] - 1e-3  # it trained: the comparison is not of idle weights
    # Weights: after three AdamW steps of lr 1e-3 every weight moved by up to ~3e-3; Adam's normalisation
    # can turn a summation-order difference in a near-zero gradient into a visible one, bounded by lr per
    # step, so weights agree to 1e-4 while the update they share is 30× larger.
    moved = max((single_state[k] - load_model("tiny-llama").model.state_dict()[k]).abs().max().item()
                for k in single_state)
    assert moved > 1e-3
    for key, value in single_state.items():
        torch.testing.assert_close(ddp_state[key], value, atol=1e-4, rtol=0, msg=key)


def test_the_batch_is_split_across_processes():
    assert AccelerateLauncher(2).split_settings(_settings(per_device_batch_size=4)).per_device_batch_size == 2
    with pytest.raises(ConfigError, match="multiple of --num-processes 3"):
        AccelerateLauncher(3).split_settings(_settings(per_device_batch_size=4))
    with pytest.raises(ConfigError, match="positive"):
        AccelerateLauncher(0)


def test_shipped_accelerate_configs():
    expected = {"ddp-gpu": ("MULTI_GPU", None), "fsdp": ("FSDP", None), "deepspeed-zero2": ("DEEPSPEED", 2),
                "deepspeed-zero3": ("DEEPSPEED", 3)}
    for name, (kind, stage) in expected.items():
        path = resolve_accelerate_config(name)
        assert path == LAUNCH_CONFIGS / f"{name}.yaml"
        config = yaml.safe_load(path.read_text())
        assert config["distributed_type"] == kind and config["mixed_precision"] == "no"
        if stage:
            assert config["deepspeed_config"]["zero_stage"] == stage
        assert "--config_file" in AccelerateLauncher(2, name).command(path)
    with pytest.raises(ConfigError, match="deepspeed-zero2"):
        resolve_accelerate_config("zero9")
    command = AccelerateLauncher(2).command(LAUNCH_CONFIGS / "job.pt")
    assert command[-3:] == ["-m", "suite.execution.launch", str(LAUNCH_CONFIGS / "job.pt")] and "--multi_gpu" in command


def test_launcher_flags_need_each_other(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": "tiny-llama", "dataset": "hh-rlhf-harmless", "methods": ["dpo"]}))
    assert cli_main(["run", str(config), "--num-processes", "2", "--out", str(tmp_path / "r")]) == 2
    assert "need --launcher accelerate" in capsys.readouterr().err
    assert cli_main(["run", str(config), "--cpus-per-run", "2", "--out", str(tmp_path / "r")]) == 2
    assert "need --executor ray" in capsys.readouterr().err
