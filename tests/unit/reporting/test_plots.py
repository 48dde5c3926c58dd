"""The leaderboard plots: each written as a valid PNG and SVG, drawn only when there is something to draw."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest
from support.stores import make_store

from suite.core.errors import SuiteError
from suite.analysis.tables import build_table, collect_runs
from suite.execution.store import train_curves
from suite.reporting.plots import write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def table(tmp_path):
    results, spec_path = make_store(tmp_path)
    return build_table(collect_runs([results], str(spec_path)))


def test_every_plot_is_written_as_png_and_svg(table, tmp_path):
    written = write_plots(table, tmp_path / "plots", prefix="tiny-")
    assert set(written) == {"task_bars", "frontier", "training_curves", "heatmap"}
    for name, (png, svg) in written.items():
        assert png.name == f"tiny-{name}.png" and svg.name == f"tiny-{name}.svg"
        assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5000
        root = ElementTree.parse(svg).getroot()
        assert root.tag.endswith("svg")


def test_plots_show_the_rows_they_are_about(table, tmp_path):
    _, svg = write_plots(table, tmp_path / "plots")["heatmap"]
    text = svg.read_text()
    # matplotlib writes text as glyph paths by default; the labels survive as comments / ids in the SVG
    for label in ("base", "strong", "weak"):
        assert label in text


def test_a_plot_with_nothing_to_draw_is_left_out_and_a_stale_one_removed(table, tmp_path):
    out = tmp_path / "plots"
    write_plots(table, out)
    assert (out / "training_curves.png").is_file()
    for run in table.runs:
        (run.folder / "train_log.jsonl").unlink(missing_ok=True)
    written = write_plots(table, out)
    assert "training_curves" not in written
    assert not (out / "training_curves.png").exists() and not (out / "training_curves.svg").exists()


def test_training_curves_take_the_margin_of_unpaired_methods_from_their_rewards(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"step": 1, "loss": 0.5, "rewards/desirable": 0.3, "rewards/undesirable": -0.1},
        {"step": 2, "loss": 0.4, "rewards/accuracy": 1.0, "rewards/margin": 0.7},
        {"step": 2, "train_runtime": 3.0, "train_loss": 0.45},
    ]) + "\n")
    curves = train_curves(tmp_path)
    assert curves["loss"] == [(1.0, 0.5), (2.0, 0.4)]
    assert curves["accuracy"] == [(2.0, 1.0)]
    assert curves["margin"] == [(1.0, pytest.approx(0.4)), (2.0, 0.7)]
    log.write_text('{"step": 1, "loss": 0.5}\nnot json\n')
    with pytest.raises(SuiteError, match="train_log.jsonl: line 2 is not valid JSON"):
        train_curves(tmp_path)
