"""Leaderboard scoring (v1, v2, missing tasks) on hand-made lm-eval results, and the leaderboard tables
(Markdown, CSV, HTML, LaTeX) from run folders written as the runner writes them.

The run folders here are built from per-document results through the harness's own scoring
(``score_leaderboard``) and the alignment code's own per-pair functions, then stored with the files and
keys the runner writes: manifest.json, metrics.json, lm_eval_samples.json, train_log.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
import subprocess
from html.parser import HTMLParser

import pytest

from suite.cli import main
from suite.core.errors import ConfigError, SuiteError
from suite.evaluation.harness import (
    leaf_tasks,
    score_leaderboard,
)
from suite.evaluation.leaderboard import load_leaderboard
from suite.analysis.tables import build_table, collect_runs
from suite.reporting.leaderboard import (
    render_csv,
    render_latex,
    render_markdown,
    render_runs_csv,
    write_leaderboard,
)
from support.stores import ROW_DOCS, expected_gen, expected_quiz, flip_first, make_store, write_run

# -- a small spec and run folders built like the runner's ------------------------------------------


# Per-document results of each row (one model per row; seeds differ a little). Leaves: quiz_a 16 docs, quiz_b 12,
# gen_x 10, gen_y 6.

@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)



# -- scoring: v1 and v2 on hand-made lm-eval result dicts ------------------------------------------


def test_v1_scoring_mmlu_is_the_unweighted_mean_of_its_57_subjects():
    spec = load_leaderboard("open-llm-v1")
    subjects = [f"mmlu_subject_{i:02d}" for i in range(57)]
    # subjects of different sizes and accuracies: the macro mean differs from the size-weighted mean
    accuracy = {s: 0.25 + 0.01 * i for i, s in enumerate(subjects)}
    sizes = {s: 100 + 40 * (i % 5) for i, s in enumerate(subjects)}
    results = {s: {"acc,none": accuracy[s], "sample_len": sizes[s]} for s in subjects}
    results.update({
        "arc_challenge": {"acc_norm,none": 0.60, "acc,none": 0.55}, "hellaswag": {"acc_norm,none": 0.80},
        "truthfulqa_mc2": {"acc,none": 0.45}, "winogrande": {"acc,none": 0.75},
        "gsm8k": {"exact_match,strict-match": 0.30, "exact_match,flexible-extract": 0.35},
    })
    plan = {"arc": [("arc_challenge", "arc_challenge")], "hellaswag": [("hellaswag", "hellaswag")],
            "mmlu": [(s, s) for s in subjects], "truthfulqa": [("truthfulqa_mc2", "truthfulqa_mc2")],
            "winogrande": [("winogrande", "winogrande")], "gsm8k": [("gsm8k", "gsm8k")]}
    scored = score_leaderboard(spec, results, plan)
    macro = sum(accuracy.values()) / 57  # 0.25 + 0.01 * 28 = 0.53
    weighted = sum(accuracy[s] * sizes[s] for s in subjects) / sum(sizes.values())
    assert scored.scores["mmlu"]["acc"] == pytest.approx(0.53) == pytest.approx(macro)
    assert abs(macro - weighted) > 1e-3
    assert scored.headlines == pytest.approx({"arc": 60.0, "hellaswag": 80.0, "mmlu": 53.0, "truthfulqa": 45.0,
                                              "winogrande": 75.0, "gsm8k": 30.0})  # strict-match, not flexible
    assert scored.average == pytest.approx((60 + 80 + 53 + 45 + 75 + 30) / 6)
    assert scored.missing == {} and scored.partial_average is None


def v2_results():
    spec = load_leaderboard("open-llm-v2")
    bbh = next(t for t in spec.tasks if t.id == "bbh")
    results, plan = {}, {}
    # BBH: every subtask 20 % of the way from chance to perfect, except one below chance (clamped to 0)
    for leaf, lower in bbh.lower.items():
        value = 0.3 if leaf == "leaderboard_bbh_navigate" else lower + (1 - lower) * 0.2
        results[leaf] = {"acc_norm,none": value}
    plan["bbh"] = [(leaf, leaf) for leaf in bbh.lower]
    results["leaderboard_ifeval"] = {"prompt_level_strict_acc,none": 0.4, "inst_level_strict_acc,none": 0.5,
                                     "prompt_level_loose_acc,none": 0.6}
    plan["ifeval"] = [("leaderboard_ifeval", "leaderboard_ifeval")]
    math_leaves = ["algebra", "counting_and_prob", "geometry", "intermediate_algebra", "num_theory", "prealgebra",
                   "precalculus"]
    for leaf in math_leaves:
        name = f"leaderboard_math_{leaf}_hard"
        results[name] = {"exact_match,none": 0.1 if leaf == "algebra" else 0.0,
                         "sample_len": 300 if leaf == "algebra" else 100}
    plan["math_hard"] = [(f"leaderboard_math_{leaf}_hard",) * 2 for leaf in math_leaves]
    for leaf, value, size in (("diamond", 0.30, 198), ("extended", 0.28, 546), ("main", 0.26, 448)):
        results[f"leaderboard_gpqa_{leaf}"] = {"acc_norm,none": value, "sample_len": size}
    plan["gpqa"] = [(f"leaderboard_gpqa_{leaf}",) * 2 for leaf in ("diamond", "extended", "main")]
    for leaf, value in (("murder_mysteries", 0.6), ("object_placements", 0.2), ("team_allocation", 0.5)):
        results[f"leaderboard_musr_{leaf}"] = {"acc_norm,none": value}
    plan["musr"] = [(f"leaderboard_musr_{leaf}",) * 2 for leaf in ("murder_mysteries", "object_placements",
                                                                   "team_allocation")]
    results["leaderboard_mmlu_pro"] = {"acc,none": 0.28}
    plan["mmlu_pro"] = [("leaderboard_mmlu_pro", "leaderboard_mmlu_pro")]
    return spec, results, plan


V2_EXPECTED = {
    "ifeval": 45.0,  # mean of prompt- (40) and instruction-level (50) strict accuracy, lower bound 0
    "bbh": 100 * (23 * 0.2 + 0.0) / 24,  # per subtask, navigate clamped at 0
    "math_hard": 100 * (0.1 * 300) / (300 + 6 * 100),  # whole: 30 solved of 900 (the unweighted mean is 1.43)
    "gpqa": 100 * ((0.30 * 198 + 0.28 * 546 + 0.26 * 448) / 1192 - 0.25) / 0.75,  # whole, then normalised: 3.44
    "musr": 100 * (0.2 + 0.0 + 0.25) / 3,  # murder (.6-.5)/.5, objects clamped, team (.5-1/3)/(2/3)
    "mmlu_pro": 20.0,  # (0.28 - 0.1) / 0.9
}


def test_v2_scoring_normalises_per_subtask_or_whole_task_as_the_leaderboard():
    spec, results, plan = v2_results()
    scored = score_leaderboard(spec, results, plan)
    assert scored.headlines == pytest.approx(V2_EXPECTED)
    assert V2_EXPECTED["gpqa"] == pytest.approx(3.4407, abs=1e-4)
    assert scored.scores["gpqa"]["acc_norm"] == pytest.approx(0.275805, abs=1e-6)  # the raw, size-weighted score
    assert scored.average == pytest.approx(statistics.fmean(V2_EXPECTED.values()))


def test_v2_missing_tasks_are_reported_and_leave_the_average_unset():
    spec, results, plan = v2_results()
    plan["musr"] = []  # MuSR is not in the mirror
    plan["gpqa"] = [("leaderboard_gpqa_diamond", "leaderboard_gpqa_diamond")]  # only diamond is
    missing = {"musr": ["leaderboard_musr_murder_mysteries", "leaderboard_musr_object_placements",
                        "leaderboard_musr_team_allocation"],
               "gpqa": ["leaderboard_gpqa_extended", "leaderboard_gpqa_main"]}
    scored = score_leaderboard(spec, results, plan, missing)
    assert scored.average is None
    assert scored.missing == missing and "musr" not in scored.headlines
    assert scored.headlines["gpqa"] == pytest.approx(100 * (0.30 - 0.25) / 0.75)  # diamond alone
    present = [V2_EXPECTED[t] for t in ("ifeval", "bbh", "math_hard", "mmlu_pro")] + [100 * 0.05 / 0.75]
    assert scored.partial_average == pytest.approx(statistics.fmean(present))


def test_standard_errors_come_from_the_per_document_results():
    spec = load_leaderboard("open-llm-v2")
    results = {"leaderboard_mmlu_pro": {"acc,none": 0.75}}
    samples = {"leaderboard_mmlu_pro": {"doc_id": [0, 1, 2, 3], "acc,none": [1, 0, 1, 1]}}
    only = type(spec)(spec.name, spec.description, spec.comparable, [t for t in spec.tasks if t.id == "mmlu_pro"],
                      spec.path)
    scored = score_leaderboard(only, results, {"mmlu_pro": [("leaderboard_mmlu_pro",) * 2]}, samples=samples)
    # sample std 0.5, / sqrt(4) = 0.25; the normalisation (x − 0.1)/0.9 scales it by 1/0.9
    assert scored.stderr["mmlu_pro"] == pytest.approx(100 * 0.25 / 0.9)
    assert scored.stderr["average"] == pytest.approx(100 * 0.25 / 0.9)


def test_lm_eval_tags_expand_to_their_tasks():
    """MMLU's groups list their subjects through tags (mmlu_stem -> mmlu_stem_tasks -> subjects)."""
    from lm_eval.tasks._index import Entry, Kind

    class Index:
        task_index = {
            "mmlu": Entry("mmlu", Kind.GROUP, None, {"task": ["mmlu_stem", "mmlu_other"]}),
            "mmlu_stem": Entry("mmlu_stem", Kind.GROUP, None, {"task": ["mmlu_stem_tasks"]}),
            "mmlu_stem_tasks": Entry("mmlu_stem_tasks", Kind.TAG, None, None, {"mmlu_physics", "mmlu_anatomy"}),
            "mmlu_other": Entry("mmlu_other", Kind.GROUP, None, {"task": ["mmlu_law"]}),
            "mmlu_physics": Entry("mmlu_physics", Kind.TASK, None, {}),
            "mmlu_anatomy": Entry("mmlu_anatomy", Kind.TASK, None, {}),
            "mmlu_law": Entry("mmlu_law", Kind.TASK, None, {}),
        }

    assert leaf_tasks(Index, "mmlu") == ["mmlu_anatomy", "mmlu_physics", "mmlu_law"]


@pytest.mark.slow
def test_the_real_mmlu_group_has_57_subjects():
    from suite.evaluation.harness import task_index

    leaves = leaf_tasks(task_index(None), "mmlu")
    assert len(leaves) == len(set(leaves)) == 57 and "mmlu_abstract_algebra" in leaves


def test_spec_rejects_a_per_subtask_lower_bound_for_a_whole_task(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("comparable: true\ntasks: [{id: a, lm_eval: b, num_fewshot: 0, metric: acc, aggregate: whole,"
                    " lower: {b: 0.5}}]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: tasks\[0\].lower"):
        load_leaderboard(str(path))
    path.write_text("comparable: true\ntasks: [{id: a, lm_eval: b, num_fewshot: 0, metric: acc, aggregate: all}]\n")
    with pytest.raises(ConfigError, match=r"tasks\[0\].aggregate: expected one of subtasks, whole"):
        load_leaderboard(str(path))


# -- the tables -----------------------------------------------------------------------------------


def test_rows_are_runs_with_mean_std_over_seeds_and_delta_against_base(store):
    results, spec_path = store
    table = build_table(collect_runs([results], str(spec_path)))
    assert [row.method for row in table.rows] == ["base", "strong", "weak"]  # base first, then by average
    base, strong, weak = table.rows
    strong_s1 = flip_first(ROW_DOCS["strong"], "quiz_a")
    quiz = [expected_quiz(ROW_DOCS["strong"]), expected_quiz(strong_s1)]
    assert strong.mean["quiz"] == pytest.approx(statistics.fmean(quiz))
    assert strong.std["quiz"] == pytest.approx(statistics.stdev(quiz))
    assert strong.std["gen"] == pytest.approx(0.0)
    averages = [(q + expected_gen(ROW_DOCS["strong"])) / 2 for q in quiz]
    assert strong.mean["average"] == pytest.approx(statistics.fmean(averages))
    base_average = (expected_quiz(ROW_DOCS["base"]) + expected_gen(ROW_DOCS["base"])) / 2
    assert base.mean["average"] == pytest.approx(base_average)
    assert strong.delta["average"] == pytest.approx(statistics.fmean(averages) - base_average)
    assert strong.delta["gen"] == pytest.approx(expected_gen(ROW_DOCS["strong"]) - expected_gen(ROW_DOCS["base"]))
    # weak misses gen_y: gen is still scored (from gen_x) but flagged, so no average — a partial one instead
    assert weak.missing == ["gen"] and weak.mean["average"] is None
    assert weak.mean["partial_average"] == pytest.approx(
        (expected_quiz(ROW_DOCS["weak"]) + expected_gen(ROW_DOCS["weak"])) / 2)
    assert weak.delta["partial_average"] is None  # base ran every task: not the same tasks behind both
    assert [run.run_id for run in table.runs] == ["base-0000", "strong-s0-1111", "strong-s1-2222", "weak-s0-3333"]
    assert table.excluded == [("broken-s0-4444", "failed, not scored")]


def test_markdown_has_methods_runs_alignment_and_missing_sections(store):
    results, spec_path = store
    table = build_table(collect_runs([results], str(spec_path)), significance_resamples=200)
    text = render_markdown(table)
    assert "NOT comparable" in text
    strong = table.rows[1]
    line = next(l for l in text.splitlines() if l.startswith("| strong | 2 |"))
    assert f"{strong.mean['quiz']:.2f} ± {strong.std['quiz']:.2f}" in line
    assert f"{strong.delta['average']:+.2f}" in line
    weak_line = next(l for l in text.splitlines() if l.startswith("| weak | 1 |"))
    assert f"| {table.rows[2].mean['gen']:.2f} (partial) | — |" in weak_line  # gen from gen_x only; no average
    run_line = next(l for l in text.splitlines() if l.startswith("| base-0000 |"))
    base_run = table.runs[0]
    assert f"{base_run.scores['quiz']:.2f} ± {base_run.stderr['quiz']:.2f}" in run_line  # lm-eval stderr per run
    assert "gen: gen_y did not run (1 run)" in text
    assert "## Alignment metrics" in text and "[" in text.split("## Alignment metrics")[1]
    assert "`broken-s0-4444`: failed, not scored" in text
    assert "lm_eval_version" in text and "batch_size: 4" in text


def test_csv_files_hold_summary_and_runs(store):
    results, spec_path = store
    table = build_table(collect_runs([results], str(spec_path)))
    summary = list(csv.DictReader(io.StringIO(render_csv(table))))
    assert [r["method"] for r in summary] == ["base", "strong", "weak"]
    strong = summary[1]
    assert float(strong["quiz"]) == pytest.approx(table.rows[1].mean["quiz"])
    assert float(strong["quiz_std"]) == pytest.approx(table.rows[1].std["quiz"])
    assert float(strong["average_delta"]) == pytest.approx(table.rows[1].delta["average"])
    assert summary[0]["average_delta"] == "" and summary[2]["missing"] == "gen" and summary[2]["average"] == ""
    runs = list(csv.DictReader(io.StringIO(render_runs_csv(table))))
    assert len(runs) == 4 and float(runs[0]["quiz_stderr"]) > 0
    assert float(runs[1]["reward_accuracy"]) == pytest.approx(table.runs[1].alignment["reward_accuracy"])


def test_latex_is_a_booktabs_tabular_with_escaped_names(store):
    results, spec_path = store
    table = build_table(collect_runs([results], str(spec_path)))
    tex = render_latex(table)
    assert tex.count("\\toprule") == tex.count("\\midrule") == tex.count("\\bottomrule") == 1
    assert "\\begin{tabular}{lrrrrrr}" in tex  # method, seeds, quiz, gen, average, partial avg, delta
    assert "$\\pm$" in tex and "$\\Delta$" in tex and "tiny-board" in tex
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == 3 and all(line.count("&") == 6 and line.endswith("\\\\") for line in body)
    assert "partial\\_average" not in tex  # titles, not keys; underscores escaped where they occur


class TableReader(HTMLParser):
    """Collects every table's header cells and rows (cell text and data-value), scripts and external links."""

    def __init__(self):
        super().__init__()
        self.tables, self.scripts, self.external, self.images = [], [], [], []
        self._cell = self._row = None
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table":
            self.tables.append({"id": attrs.get("id"), "class": attrs.get("class"), "header": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = {"tag": tag, "text": "", "value": attrs.get("data-value")}
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if all(c["tag"] == "th" for c in self._row):
                table["header"] = [c["text"] for c in self._row]
            else:
                table["rows"].append(self._row)
            self._row = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_script:
            self.scripts[-1] += data


def test_html_is_self_contained_with_sortable_tables(store, tmp_path):
    results, spec_path = store
    written = write_leaderboard([results], str(spec_path), tmp_path / "out", significance_resamples=200)
    page = written["html"].read_text()
    reader = TableReader()
    reader.feed(page)
    assert reader.external == []  # nothing loaded from elsewhere
    assert len(reader.images) == 4 and all(src.startswith("data:image/png;base64,") for src in reader.images)
    methods = next(t for t in reader.tables if t["id"] == "methods")
    assert methods["class"] == "sortable" and methods["header"][:4] == ["method", "seeds", "quiz", "gen"]
    assert [r[0]["text"] for r in methods["rows"]] == ["base", "strong", "weak"]
    quiz = methods["header"].index("quiz")
    assert float(methods["rows"][1][quiz]["value"]) == pytest.approx(build_table(
        collect_runs([results], str(spec_path))).rows[1].mean["quiz"], abs=0.005)  # the shown number
    weak_average = methods["rows"][2][methods["header"].index("Average")]
    assert weak_average["text"] == "—" and weak_average["value"] == ""  # sorts last
    runs = next(t for t in reader.tables if t["id"] == "runs")
    assert len(runs["rows"]) == 4
    script = reader.scripts[-1]
    assert 'querySelectorAll("table.sortable")' in script and 'addEventListener("click"' in script


# A stand-in for the few DOM calls the sort script makes (no browser on this machine): enough to run the
# page's own script on its own table and check the order it produces.
NODE_DOM = r"""
const fs = require("fs");
const {rows, script} = JSON.parse(fs.readFileSync(0, "utf8"));
function cell(value) { return {getAttribute: (k) => (k === "data-value" ? value : null)}; }
const bodyRows = rows.map((values, i) => ({id: i, cells: values.map(cell)}));
const body = {rows: bodyRows, appendChild(row) { this.rows = this.rows.filter((r) => r !== row).concat([row]); }};
const headers = rows[0].map(() => {
  const attrs = {}; let click = null;
  return {getAttribute: (k) => (k in attrs ? attrs[k] : null), setAttribute: (k, v) => { attrs[k] = v; },
          removeAttribute: (k) => { delete attrs[k]; }, addEventListener: (e, f) => { click = f; },
          click: () => click()};
});
const table = {tBodies: [body], tHead: {rows: [{cells: headers}]}};
global.document = {querySelectorAll: () => [table]};
eval(script);
const order = [];
headers[1].click(); order.push(body.rows.map((r) => r.id));
headers[1].click(); order.push(body.rows.map((r) => r.id));
headers[0].click(); order.push(body.rows.map((r) => r.id));
console.log(JSON.stringify(order));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_sort_script_sorts_numbers_with_missing_last():
    from suite.reporting.render import HTML_SORT_SCRIPT

    rows = [["weak", "12.5"], ["base", ""], ["strong", "40.25"], ["mid", "9"]]
    done = subprocess.run(["node", "-e", NODE_DOM], input=json.dumps({"rows": rows, "script": HTML_SORT_SCRIPT}),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    ascending, descending, by_name = json.loads(done.stdout)
    assert ascending == [3, 0, 2, 1]  # 9 < 12.5 < 40.25 numerically (not as text), missing last
    assert descending == [2, 0, 3, 1]  # reversed on the second click, missing still last
    assert by_name == [1, 3, 2, 0]  # text column: base, mid, strong, weak


def test_several_results_folders_combine_and_repeated_runs_count_once(store, tmp_path):
    results, spec_path = store
    other = tmp_path / "other"
    write_run(other, spec_path, "strong-s2-5555", "strong", 2, ROW_DOCS["strong"])
    shutil.copytree(results / "runs" / "base-0000", other / "runs" / "base-0000")  # the same run in both
    table = build_table(collect_runs([results, other], str(spec_path)))
    strong = next(row for row in table.rows if row.method == "strong")
    assert sorted(strong.seeds) == [0, 1, 2]
    assert sum(1 for run in table.runs if run.run_id == "base-0000") == 1


def test_runs_on_another_leaderboard_are_left_out(store):
    results, spec_path = store
    write_run(results, spec_path, "dpo-s0-9999", "dpo", 0, ROW_DOCS["strong"], leaderboard="quick")
    collected = collect_runs([results], str(spec_path))
    assert ("dpo-s0-9999", "evaluated on quick, not tiny-board") in collected.excluded
    assert all(run.method != "dpo" for run in collected.runs)


def test_the_command_writes_every_format(store, tmp_path, capsys):
    results, spec_path = store
    out = tmp_path / "tables"
    assert main(["leaderboard", str(results), "--spec", str(spec_path), "--out", str(out), "--resamples", "100"]) == 0
    names = sorted(p.name for p in out.iterdir() if p.is_file())
    assert names == ["leaderboard-tiny-board-runs.csv", "leaderboard-tiny-board.csv", "leaderboard-tiny-board.html",
                     "leaderboard-tiny-board.md", "leaderboard-tiny-board.tex"]
    assert "html: " in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--spec", "open-llm-v9"], "--spec: unknown leaderboard spec 'open-llm-v9'; available: "),
    (["--format", "md,pdf"], "--format: unknown format 'pdf'"),
])
def test_clear_errors_for_bad_arguments(store, capsys, arguments, message):
    results, _ = store
    assert main(["leaderboard", str(results), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_clear_errors_for_missing_folders_and_runs(tmp_path, store, capsys):
    results, spec_path = store
    assert main(["leaderboard", str(tmp_path / "nowhere"), "--spec", str(spec_path)]) == 2
    assert "nowhere: no such results directory" in capsys.readouterr().err
    with pytest.raises(SuiteError, match="no complete run .* was evaluated on open-llm-v1"):
        collect_runs([results], "open-llm-v1")
    with pytest.raises(SuiteError, match="choose one with --spec"):
        write_run(results, spec_path, "dpo-s0-9999", "dpo", 0, ROW_DOCS["strong"], leaderboard="quick")
        collect_runs([results])


@pytest.mark.slow  # about a minute on a busy 2-core CPU (lm-eval start-up, training, two evaluations)
def test_tables_and_html_from_a_tiny_run(tmp_path, pairwise_file, local_leaderboard):
    """The runner on tiny-llama (base + DPO, one local lm-eval task) keeps what the tables and tests need:
    evaluation settings in the manifest, per-document and per-pair results; the command renders them."""
    import yaml

    config = {"name": "tiny", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
              "methods": ["dpo"], "seeds": [0], "data": {"heldout_fraction": 0.25},
              "train": {"max_steps": 1, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64},
              "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                       "generation_prompts": 1, "max_new_tokens": 2}}
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    for folder in (out / "runs").iterdir():
        manifest = json.loads((folder / "manifest.json").read_text())
        settings = manifest["eval_settings"]
        assert settings["batch_size"] == 4 and settings["apply_chat_template"] is False
        assert settings["lm_eval_version"] and settings["tasks"]["colors"]["num_fewshot"] == 0
        assert settings["data_source"] and settings["fewshot_as_multiturn"] is False
        metrics = json.loads((folder / "metrics.json").read_text())
        assert len(metrics["alignment_pairs"]["reward_margin"]) == metrics["alignment"]["pairs"]
        assert metrics["eval_headline"]["colors"] == pytest.approx(100 * statistics.fmean(
            [metrics["eval"]["colors"]["acc_normalised"], metrics["eval"]["colors"]["acc_norm_normalised"]]))
        samples = json.loads((folder / "lm_eval_samples.json").read_text())
        columns = samples["colors"]["alignsuite_test_colors"]
        assert columns["doc_id"] == list(range(6)) and set(columns["acc,none"]) <= {0.0, 1.0}
        assert metrics["eval"]["colors"]["acc"] == pytest.approx(statistics.fmean(columns["acc,none"]))
    tables = tmp_path / "tables"
    assert main(["leaderboard", str(out), "--spec", str(local_leaderboard), "--out", str(tables),
                 "--resamples", "200"]) == 0
    reader = TableReader()
    reader.feed((tables / "leaderboard-tiny-test.html").read_text())
    methods = next(t for t in reader.tables if t["id"] == "methods")
    assert [row[0]["text"] for row in methods["rows"]] == ["base", "dpo"]
    significance = methods["rows"][1][-1]["text"]
    assert significance.startswith(("yes (p", "no (p"))  # tested on the six documents both were scored on
