"""eval.chat_template (auto | on | off): how it resolves per task, how old configs map onto it, what the run's
identity keeps, and that lm-eval really applies the tokenizer's template (few-shot as multi-turn) when on."""

import dataclasses

import pytest

from suite.config.schema import build_config
from suite.core.errors import ConfigError
from suite.core.resources import shipped_dir
from suite.evaluation import evaluate_leaderboard, load_leaderboard
from suite.evaluation.harness import chat_template_hash, eval_settings, resolve_chat_template
from suite.execution.result_checks import input_files_hash
from suite.execution.runner import eval_definition
from suite.modeling.models import load_model

BASE = {"name": "t", "model": "tiny-llama", "dataset": "hh-rlhf-harmless", "methods": ["dpo"]}


def config(**evaluation):
    return build_config({**BASE, "eval": evaluation})


def two_task_spec(tmp_path, local_leaderboard, pin_first="off"):
    """The local spec with the colors task twice: the first pinned, the second not (1 shot)."""
    text = local_leaderboard.read_text().replace(
        "  - {id: colors,", f"  - {{id: pinned, chat_template: {pin_first}, lm_eval: alignsuite_test_colors, "
                            "num_fewshot: 0, metric: acc}\n  - {id: colors,").replace("num_fewshot: 0, metric: [acc",
                                                                                    "num_fewshot: 1, metric: [acc")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    return load_leaderboard(str(path))


def test_config_values_and_the_old_key():
    assert config().eval.chat_template == "auto"
    assert config(chat_template="on").eval.chat_template == "on"
    assert config(chat_template=False).eval.chat_template == "off"  # YAML reads a bare off as false
    old = config(apply_chat_template=True).eval
    assert (old.chat_template, old.apply_chat_template) == ("on", None)
    assert config(apply_chat_template=False).eval.chat_template == "off"
    with pytest.raises(ConfigError, match="eval.chat_template"):
        config(chat_template="sometimes")
    with pytest.raises(ConfigError, match="apply_chat_template: true contradicts eval.chat_template: off"):
        config(apply_chat_template=True, chat_template="off")


def test_auto_honours_the_spec_pin_and_the_tokenizer(tmp_path, local_leaderboard):
    spec = two_task_spec(tmp_path, local_leaderboard)
    assert resolve_chat_template("auto", spec, True) == {"pinned": False, "colors": True}
    assert resolve_chat_template("auto", spec, False) == {"pinned": False, "colors": False}
    assert resolve_chat_template("on", spec, True) == {"pinned": True, "colors": True}
    assert resolve_chat_template("off", spec, True) == {"pinned": False, "colors": False}
    with pytest.raises(ConfigError, match="no chat template"):
        resolve_chat_template("on", spec, False)
    v1, v2 = load_leaderboard("open-llm-v1"), load_leaderboard("open-llm-v2")
    assert not any(resolve_chat_template("auto", v1, True).values())  # the v1 leaderboard applied none
    assert all(resolve_chat_template("auto", v2, True).values())  # v2 did, for chat models
    settings = eval_settings(spec, limit=None, batch_size=4, seed=0, chat_template="auto",
                             templates={"pinned": False, "colors": True}, template_sha256="abc")
    assert settings["apply_chat_template"] == {"pinned": False, "colors": True}
    assert settings["fewshot_as_multiturn"] == {"pinned": False, "colors": True}  # colors has one shot
    assert settings["chat_template"] == "auto" and settings["chat_template_sha256"] == "abc"


def test_run_identity_keeps_what_an_evaluation_without_template_had(tmp_path):
    """off, or auto on a spec pinning off, evaluates exactly as before the key existed: same definition."""
    off = eval_definition(config(leaderboard="quick", chat_template="off"))
    assert off["apply_chat_template"] is False and "chat_template" not in off
    assert eval_definition(config(leaderboard="quick")) == off  # quick pins off
    assert eval_definition(config(leaderboard="open-llm-v1")) == eval_definition(
        config(leaderboard="open-llm-v1", apply_chat_template=False))
    on_v2 = eval_definition(config(leaderboard="open-llm-v2"))
    assert on_v2["chat_template"] == "auto" and "apply_chat_template" not in on_v2
    assert eval_definition(config(leaderboard="open-llm-v2", chat_template="on"))["chat_template"] == "on"
    # the spec's top-level pin is in the eval definition, not in the spec's content hash
    text = (shipped_dir("leaderboards") / "quick.yaml").read_text()
    assert "\nchat_template: off" in text
    pinned, unpinned = tmp_path / "pinned.yaml", tmp_path / "unpinned.yaml"
    pinned.write_text(text)
    unpinned.write_text("".join(line for line in text.splitlines(keepends=True) if not line.startswith("chat_template:")))
    assert input_files_hash(str(pinned), "x") == input_files_hash(str(unpinned), "x")
    pinned.write_text(text.replace("limit: 20", "limit: 21", 1))  # any other edit is a new spec
    assert input_files_hash(str(pinned), "x") != input_files_hash(str(unpinned), "x")


@pytest.mark.slow  # two lm-eval runs on tiny-llama: about 40 s on a busy 2-core CPU
def test_lm_eval_applies_the_template_where_resolved(tmp_path, local_leaderboard):
    loaded = load_model("tiny-llama")
    spec = two_task_spec(tmp_path, local_leaderboard)
    # the same task twice in one spec: lm-eval needs distinct names per call, so run them one spec at a time
    spec_pinned = dataclasses.replace(spec, tasks=[spec.tasks[0]])
    spec_auto = dataclasses.replace(spec, tasks=[spec.tasks[1]])
    off = evaluate_leaderboard(loaded.model, loaded.tokenizer, spec_pinned, batch_size=4, workdir=tmp_path / "a",
                               chat_template="auto")
    on = evaluate_leaderboard(loaded.model, loaded.tokenizer, spec_auto, batch_size=4, workdir=tmp_path / "b",
                              chat_template="auto")
    plain = off.raw["first_request"]["alignsuite_alignsuite_test_colors"]
    templated = on.raw["first_request"]["alignsuite_alignsuite_test_colors"]
    assert plain.startswith("Question:")
    assert templated != plain and "Question:" in templated and templated.count("Question:") == 2  # one shot
    rendered = loaded.tokenizer.apply_chat_template([{"role": "user", "content": "Z"}], tokenize=False)
    assert rendered.split("Z")[0].strip() and rendered.split("Z")[0].strip()[:5] in templated
    assert off.settings["apply_chat_template"] is False and on.settings["apply_chat_template"] is True
    assert on.settings["fewshot_as_multiturn"] is True
    assert on.settings["chat_template_sha256"] == chat_template_hash(loaded.tokenizer) is not None
