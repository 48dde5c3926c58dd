"""The listing commands and CLI error handling."""

import json

from suite.cli import main


def test_methods_json_lists_the_registry(capsys):
    assert main(["methods", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"sft", "dpo", "kto", "una-binary-mse", "una-binary-bce", "una-score-mse"} <= set(rows)
    assert rows["una-score-mse"]["feedback"] == "scalar" and rows["una-score-mse"]["arxiv"] == "2408.15339"
    assert rows["dpo"]["taxonomy"]["reward"] == "implicit" and rows["dpo"]["defaults"]["beta"] == 0.1
    assert main(["methods"]) == 0
    assert "una-binary-bce" in capsys.readouterr().out


def test_datasets_and_leaderboards(capsys):
    assert main(["datasets", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["hh-rlhf-harmless"]["feedback"] == "pairwise" and rows["alpaca-eval-scored"]["feedback"] == "scalar"
    assert main(["datasets"]) == 0 and "alpaca-eval-scored" in capsys.readouterr().out
    assert main(["leaderboards"]) == 0
    out = capsys.readouterr().out
    assert "quick" in out and "not comparable" in out


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alignsuite: error:") and "missing.yaml: config file not found" in err
    assert main(["report", str(tmp_path)]) == 2
    assert "no runs" in capsys.readouterr().err.lower()
