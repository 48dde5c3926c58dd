"""The model resolver: tiny model, errors, LoRA, the embedded SmolLM2 (slow)."""

import pytest
import torch

from suite.core.errors import ConfigError
from suite.modeling.models import (
    add_lora,
    embedded_model_dir,
    load_model,
    model_fingerprint,
)


def test_tiny_llama_is_deterministic_with_a_real_tokenizer():
    first, second = load_model("tiny-llama"), load_model("tiny-llama")
    assert model_fingerprint(first.model) == model_fingerprint(second.model)
    tokenizer = first.tokenizer
    assert tokenizer.chat_template and tokenizer.pad_token is not None
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>assistant" in ids
    assert first.model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in first.model.parameters()) < 5_000_000


def test_fingerprint_changes_with_the_weights():
    loaded = load_model("tiny-llama")
    before = model_fingerprint(loaded.model)
    with torch.no_grad():
        next(loaded.model.parameters()).add_(1e-3)
    assert model_fingerprint(loaded.model) != before


def test_local_path_round_trip(tmp_path):
    loaded = load_model("tiny-llama")
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    again = load_model(str(tmp_path))
    assert model_fingerprint(again.model) == model_fingerprint(loaded.model)


@pytest.mark.parametrize("name, fragment", [("not-a-model", "unknown model 'not-a-model'"), ("", "expected a model name")])
def test_unknown_model_names_are_config_errors(name, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_model(name)


def test_bad_dtype_is_a_config_error(tmp_path):
    loaded = load_model("tiny-llama")
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="unknown dtype 'int3'"):
        load_model(str(tmp_path), dtype="int3")


def test_lora_wraps_only_adapters_as_trainable():
    model = add_lora(load_model("tiny-llama").model, {"r": 2})
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with pytest.raises(ConfigError, match="unknown key"):
        add_lora(load_model("tiny-llama").model, {"rank": 2})


@pytest.mark.slow
def test_embedded_smollm2_converts_and_generates():
    folder = embedded_model_dir()
    assert (folder / "model.safetensors").is_file() and (folder / "provenance.json").is_file()
    loaded = load_model("smollm2-135m-instruct")
    assert sum(p.numel() for p in loaded.model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    tokenizer = loaded.tokenizer
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )
    out = loaded.model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
