"""Model cards, ``alignsuite export`` and lm-eval's own output layout, on one tiny-llama sweep (base + DPO with
LoRA + SFT with full weights, a local lm-eval task): the card parses back with huggingface_hub, the exported
folder loads with ``AutoModelForCausalLM.from_pretrained`` and evaluates with lm-eval's own ``hf`` model."""

import json
import re

import pytest
import yaml
from support import preference_rows, write_jsonl, write_local_leaderboard

from suite.cli import main


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    spec = write_local_leaderboard(folder)
    pairs = write_jsonl(folder / "pairs.jsonl", preference_rows())
    config = {
        "name": "export", "model": "tiny-llama", "dataset": {"path": str(pairs), "format": "pairwise"},
        "methods": ["dpo"], "seeds": [0], "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64,
                  "warmup_ratio": 0.0, "lora": {"r": 4}},
        "eval": {"leaderboard": str(spec), "batch_size": 4, "alignment_pairs": 4, "generation_prompts": 0},
    }
    path = folder / "export.yaml"
    path.write_text(yaml.safe_dump(config))
    out = folder / "results"
    assert main(["run", str(path), "--out", str(out)]) == 0
    # a full fine-tuning run as well (no LoRA): its model/ is a plain model folder
    assert main(["run", str(path), "--out", str(out), "--set", "train.lora=null", "--set", "methods=[sft]"]) == 0
    return out, folder


def _run_dir(out, label, lora=None):
    found = []
    for run_dir in sorted((out / "runs").iterdir()):
        manifest = json.loads((run_dir / "manifest.json").read_text())
        if manifest["method"] == label and (lora is None or (manifest["config"]["train"]["lora"] is not None) == lora):
            found.append(run_dir)
    assert len(found) == 1, found
    return found[0]


def test_saved_model_folder_has_a_card_huggingface_hub_reads(results):
    from huggingface_hub import ModelCard

    out, _ = results
    run_dir = _run_dir(out, "dpo")
    card = ModelCard.load(run_dir / "model" / "README.md")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert card.data.base_model == "tiny-llama" and card.data.library_name == "transformers"
    assert {"alignsuite", "dpo"} <= set(card.data.tags)
    by_metric = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert by_metric[("alignsuite_test_colors", "acc")] == pytest.approx(metrics["eval"]["colors"]["acc"], abs=1e-6)
    assert "Direct Preference Optimization" in card.text and "2305.18290" in card.text
    assert "`beta`" in card.text and "colors" in card.text and "## Data" in card.text


def test_export_merges_lora_into_a_folder_from_pretrained_and_lm_eval_load(results, tmp_path):
    import lm_eval
    import torch
    from huggingface_hub import ModelCard
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM

    out, folder = results
    run_dir = _run_dir(out, "dpo")
    target = tmp_path / "dpo-export"
    assert main(["export", str(run_dir), "--out", str(target), "--merge-lora"]) == 0
    assert not (target / "adapter_config.json").exists() and (target / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(target)
    from suite.modeling.models import load_trained

    expected = load_trained(run_dir / "model", "tiny-llama")
    name, value = next(iter(expected.state_dict().items()))
    assert torch.allclose(model.state_dict()[name], value)
    assert "dpo" in ModelCard.load(target / "README.md").data.tags
    evaluated = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={target},device=cpu", tasks=["alignsuite_test_colors"],
                                        task_manager=TaskManager(include_path=str(folder / "tasks")), batch_size=4)
    assert 0.0 <= evaluated["results"]["alignsuite_test_colors"]["acc,none"] <= 1.0


def test_export_copies_full_weights_and_the_base_row(results, tmp_path):
    from transformers import AutoModelForCausalLM

    out, _ = results
    for label, lora in (("sft", False), ("base", None)):
        target = tmp_path / label
        assert main(["export", str(_run_dir(out, label, lora)), "--out", str(target)]) == 0
        AutoModelForCausalLM.from_pretrained(target)
        assert json.loads((target / "alignsuite_run.json").read_text())["manifest"]["method"] == label


def test_export_refuses_an_incomplete_run_a_bad_repo_and_a_used_folder(results, tmp_path, capsys):
    out, _ = results
    run_dir = _run_dir(out, "dpo")
    assert main(["export", str(run_dir), "--out", str(tmp_path / "x"), "--push-to-hub", "not a repo"]) == 2
    assert "--push-to-hub" in capsys.readouterr().err and not (tmp_path / "x").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "f").write_text("x")
    assert main(["export", str(run_dir), "--out", str(tmp_path / "used")]) == 2
    assert "new or empty folder" in capsys.readouterr().err
    broken = tmp_path / "runs" / "dpo-s0-0000000000"
    broken.mkdir(parents=True)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))
    assert main(["export", str(broken), "--out", str(tmp_path / "y")]) == 2
    assert "the run is failed, not complete" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_each_run_keeps_lm_evals_own_output_layout(results):
    from lm_eval.utils import get_latest_filename, get_results_filenames, get_sample_results_filenames

    out, _ = results
    run_dir = _run_dir(out, "dpo")
    (model_folder,) = (run_dir / "lm_eval_output").iterdir()
    assert model_folder.name == run_dir.name
    files = [str(p) for p in model_folder.iterdir()]
    latest = get_latest_filename(get_results_filenames(files))
    assert re.search(r"results_[\d\-T.]+\.json$", latest)
    stored = json.loads((run_dir / "lm_eval_results.json").read_text())
    written = json.loads(open(latest).read())
    assert written["results"]["alignsuite_alignsuite_test_colors"] == \
        stored["results"]["results"]["alignsuite_alignsuite_test_colors"]
    (samples,) = get_sample_results_filenames(files)
    rows = [json.loads(line) for line in open(samples)]
    assert len(rows) == 6 and {"doc_id", "acc", "resps"} <= set(rows[0])
