"""``model: {id: ..., chat_template: FILE}``: the user's template replaces the tokenizer's, the run records it
(path and content hash, in the run id only when given), and a bad file is one clear error."""

import json

import pytest
import yaml

from suite.cli import main
from suite.config.schema import build_config
from suite.core.errors import ConfigError
from suite.execution.runner import plan_runs

TEMPLATE = "{% for m in messages %}<<{{ m['role'] }}>> {{ m['content'] }}\n{% endfor %}" \
           "{% if add_generation_prompt %}<<assistant>> {% endif %}"


def _raw(pairwise_file, model):
    return {"name": "t", "model": model, "dataset": {"path": str(pairwise_file), "format": "pairwise"},
            "methods": ["dpo"], "data": {"heldout_fraction": 0.25},
            "train": {"max_steps": 1, "per_device_batch_size": 2, "max_length": 64, "checkpoint_steps": 0},
            "eval": {"leaderboard": None, "alignment_pairs": 2, "generation_prompts": 1, "max_new_tokens": 2}}


def test_a_template_file_changes_run_ids_only_when_given(tmp_path, pairwise_file):
    template = tmp_path / "t.jinja"
    template.write_text(TEMPLATE)
    plain = {r.label: r.run_id for r in plan_runs(build_config(_raw(pairwise_file, "tiny-llama")))}
    same = {r.label: r.run_id for r in plan_runs(build_config(_raw(pairwise_file, {"id": "tiny-llama"})))}
    given = {r.label: r.run_id for r in plan_runs(build_config(
        _raw(pairwise_file, {"id": "tiny-llama", "chat_template": str(template)})))}
    assert plain == same and set(given.values()).isdisjoint(plain.values())
    template.write_text(TEMPLATE + " ")
    edited = {r.label: r.run_id for r in plan_runs(build_config(
        _raw(pairwise_file, {"id": "tiny-llama", "chat_template": str(template)})))}
    assert set(edited.values()).isdisjoint(given.values())  # the content, not the name, identifies it


@pytest.mark.parametrize("model, message", [
    ({"id": "tiny-llama", "template": "x"}, "model.template: unknown key"),
    ({"chat_template": "x"}, "model.id: missing"),
    ({"id": "tiny-llama", "chat_template": "/nonexistent/t.jinja"}, "model.chat_template: cannot read"),
    ({"id": "tiny-llama", "chat_template": "BAD"}, "not a valid Jinja template"),
])
def test_bad_model_mappings_are_config_errors(tmp_path, pairwise_file, model, message):
    if model.get("chat_template") == "BAD":
        (tmp_path / "bad.jinja").write_text("{% for m in messages %}{{ m }")
        model = {**model, "chat_template": str(tmp_path / "bad.jinja")}
    with pytest.raises(ConfigError, match=message):
        build_config(_raw(pairwise_file, model))


def test_the_run_uses_records_and_saves_the_template(tmp_path, pairwise_file):
    template = tmp_path / "t.jinja"
    template.write_text(TEMPLATE)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw(pairwise_file, {"id": "tiny-llama", "chat_template": str(template)})))
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "-q"]) == 0
    (dpo,) = (tmp_path / "r" / "runs").glob("dpo-*")
    manifest = json.loads((dpo / "manifest.json").read_text())
    assert manifest["chat_template"]["path"] == str(template) and len(manifest["chat_template"]["sha256"]) == 64
    assert manifest["config"]["model"] == "tiny-llama"
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(str(dpo / "model"))
    assert saved.chat_template == TEMPLATE
    assert saved.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                     add_generation_prompt=True) == "<<user>> hi\n<<assistant>> "
