"""A toy paper table with claims, over stored runs, for the claims engine's tests."""

from __future__ import annotations
from pathlib import Path
import yaml
from support.stores import (
    ROW_DOCS,
    spec_file,
    write_run,
)


def flip(docs: dict, leaf: str, index: int) -> dict:
    changed = {k: list(v) for k, v in docs.items()}
    changed[leaf][index] = 1 - changed[leaf][index]
    return changed


def toy_paper(root: Path) -> tuple[Path, Path]:
    """A papers folder with one table, its recipe (tiny-llama, the tiny-board spec) and stored runs."""
    spec_path = spec_file(root / "specs")
    recipe = root / "toy-recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "toy", "model": "tiny-llama", "dataset": {"path": str(root / "pairs.jsonl"), "format": "pairwise"},
        "methods": [{"id": "dpo", "label": "strong"}, {"id": "kto", "label": "weak"}, {"id": "sft", "label": "tie"}],
        "eval": {"leaderboard": str(spec_path)},
    }))
    table = {
        "id": "toy-table", "title": "Toy table", "source": "made up for the test",
        "recipes": {"small": str(recipe)},
        "rows": {"Base": "base", "Strong": "strong", "Weak": "weak", "Tie": "tie"},
        "columns": {"quiz": {"task": "quiz"}, "gen": {"task": "gen"}, "Average": {"mean_of": ["quiz", "gen"]},
                    "Human": {"unmeasured": "needs people to judge"}},
        "values": {"Base": [70, 10, 40, 5], "Strong": [60, 40, 50, 7], "Weak": [20, 70, 45, 6], "Tie": [71, 12, 41.5, 5]},
        "claims": [
            {"id": "strong-beats-base", "text": "Strong beats Base on average.", "column": "Average",
             "better": ["Strong"], "worse": ["Base"]},
            {"id": "base-beats-strong-quiz", "text": "Base beats Strong on quiz.", "column": "quiz",
             "better": ["Base"], "worse": ["Strong"]},
            {"id": "tie-beats-base", "text": "Tie edges out Base.", "column": "Average", "better": ["Tie"],
             "worse": ["Base"]},
            {"id": "weak-beats-base-gen", "text": "Weak beats Base on gen.", "column": "gen", "better": ["Weak"],
             "worse": ["Base"]},
            {"id": "people-prefer-strong", "text": "People prefer Strong.", "column": "Human",
             "better": ["Strong"], "worse": ["Base", "Weak"]},
        ],
    }
    papers = root / "papers"
    papers.mkdir()
    (papers / "toy.yaml").write_text(yaml.safe_dump({"paper": "A toy paper", "arxiv": "0000.00000",
                                                     "source": "nowhere", "tables": [table]}, sort_keys=False))
    results = root / "results"
    write_run(results, spec_path, "base-0000", "base", 0, ROW_DOCS["base"])
    write_run(results, spec_path, "strong-s0-1111", "strong", 0, ROW_DOCS["strong"])
    write_run(results, spec_path, "weak-s0-2222", "weak", 0, {k: v for k, v in ROW_DOCS["weak"].items() if k != "gen_y"})
    write_run(results, spec_path, "tie-s0-3333", "tie", 0, flip(ROW_DOCS["base"], "quiz_a", 2))
    return papers, results

