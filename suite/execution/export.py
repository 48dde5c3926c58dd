"""``alignsuite export RUN_DIR --out DIR``: take a trained model out of a results folder as a standard
Hugging Face model folder (config, safetensors weights, tokenizer, README.md model card), which
``AutoModelForCausalLM.from_pretrained(DIR)`` loads and ``lm_eval --model hf --model_args pretrained=DIR``
evaluates.

What is exported, by what the run stored:

* ``model/`` with full weights: copied; with a LoRA adapter: the adapter (loading it needs peft and the
  base model), or with ``--merge-lora`` the adapter merged into the base — a plain model;
* a composite run (PAFT) that stored its merge as ``merge_recipe.yaml``: the merge is rebuilt from the
  components' saved models;
* the ``base`` row: the untouched base model.

Only a complete run is exported. ``--push-to-hub OWNER/NAME`` then uploads the folder with
``huggingface_hub`` (needs a token: ``huggingface-cli login`` or ``HF_TOKEN``; ``--private`` for a private repo).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from suite.core.errors import SuiteError
from suite.execution.store import BASE_ROW, read_run

log = logging.getLogger(__name__)


def check_repo_id(repo_id: str) -> str:
    """``OWNER/NAME`` as the hub accepts it, else one clear error (checked before anything is written)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id.count("/") != 1:
        raise SuiteError(f"--push-to-hub: expected a hub repository OWNER/NAME, got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise SuiteError(f"--push-to-hub: {repo_id!r} is not a valid hub repository id ({exc})") from None
    return repo_id


def _save(model, tokenizer, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def export_run(run_dir, out, *, merge_lora: bool = False) -> Path:
    """Write the run's model to ``out`` as a Hugging Face folder with its model card; returns ``out``."""
    from suite.modeling.model_card import run_card, write_card

    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "manifest.json").is_file():
        raise SuiteError(f"{run_dir}: not a run folder (no manifest.json); pass results/<name>/runs/<run id>")
    record = read_run(run_dir)
    if not record.complete:
        raise SuiteError(f"{run_dir}: the run is {record.status}, not complete; only a complete run is exported "
                         "(rerun `alignsuite run` with its config to finish it)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SuiteError(f"{out}: --out must be a new or empty folder")
    manifest, model_dir = record.manifest, run_dir / "model"
    dtype = ((manifest.get("config") or {}).get("train") or {}).get("dtype")
    base_id = str(manifest.get("model"))
    out.mkdir(parents=True, exist_ok=True)
    if model_dir.is_dir() and (model_dir / "adapter_config.json").is_file() and merge_lora:
        from transformers import AutoTokenizer

        from suite.modeling.models import load_trained

        # the tokenizer the run saved: it carries a chat template the run was given (model.chat_template)
        _save(load_trained(model_dir, base_id, dtype), AutoTokenizer.from_pretrained(str(model_dir)), out)
        what = "LoRA adapter merged into the base model"
    elif model_dir.is_dir():
        shutil.copytree(model_dir, out, dirs_exist_ok=True)
        what = "LoRA adapter (needs peft and the base model; --merge-lora for a plain model)" \
            if (out / "adapter_config.json").is_file() else "full weights"
    elif (run_dir / "merge_recipe.yaml").is_file():
        from suite.merging.recipe import run_recipe

        run_recipe(run_dir / "merge_recipe.yaml", str(out))
        what = "the merge rebuilt from its components' saved models"
    elif manifest.get("method") == BASE_ROW:
        from suite.modeling.models import load_model

        loaded = load_model(base_id, dtype=dtype,
                            chat_template=(manifest.get("chat_template") or {}).get("path"))
        _save(loaded.model, loaded.tokenizer, out)
        what = "the untouched base model"
    else:
        shutil.rmtree(out, ignore_errors=True)
        raise SuiteError(f"{run_dir}: the run kept no model (train.save_model was false); rerun it with "
                         "train.save_model: true to export it")
    write_card(out, run_card(manifest, record.metrics))
    (out / "alignsuite_run.json").write_text(json.dumps(
        {"run_dir": str(run_dir.resolve()), "exported": what, "manifest": manifest}, indent=2, default=str))
    log.info(f"exported {manifest['run_id']} ({what}) to {out}")
    return out


def push_to_hub(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload an exported folder to the hub (creating the repository); returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               commit_message="Upload model exported by alignsuite")
    return str(getattr(commit, "commit_url", commit))


def export_command(args) -> int:
    repo = check_repo_id(args.push_to_hub) if args.push_to_hub else None
    out = export_run(args.run_dir, args.out, merge_lora=args.merge_lora)
    print(f"exported: {out}")
    if repo is not None:
        print(f"pushed: {push_to_hub(out, repo, private=args.private)}")
    return 0
