"""A leaderboard column whose detectable difference exceeds every observed difference is labelled as such."""

from suite.analysis.statistics import PairedComparison
from suite.analysis.tables import MethodRow, Table
from suite.reporting.leaderboard import cannot_resolve, cannot_resolve_sentence, detectable_rows, width_text


def table_with(*differences_and_halves):
    rows = [MethodRow("base", "m", "d", [], {}, {})]
    for index, (difference, half) in enumerate(differences_and_halves):
        result = PairedComparison(0, 0, difference, difference - half, difference + half, 0.5, 0.95, 100, 200)
        rows.append(MethodRow(f"m{index}", "m", "d", [], {}, {}, significance={"Average": result}))
    return Table(["Average"], [], [], {}, rows, [])


def test_cannot_resolve_only_when_every_difference_is_below_the_detectable_one():
    assert cannot_resolve(table_with((0.02, 1.5), (-0.3, 1.2)), "Average") == 1.2
    assert cannot_resolve(table_with((0.02, 1.5), (2.0, 1.2)), "Average") is None  # one row is resolved
    assert cannot_resolve(table_with(), "Average") is None  # nothing tested


def test_the_label_names_the_narrowest_detectable_difference_without_rounding_it_to_zero():
    assert "±1.20 at the narrowest" in cannot_resolve_sentence("Average", 1.2, "not a ranking.")
    # identical answers on almost every document: a tiny interval, which 2 decimals would print as ±0.00
    assert "±0.001 at the narrowest" in cannot_resolve_sentence("Average", 0.0012, "not a ranking.")


def test_both_labels_show_a_tiny_width_the_same_way():
    # the per-task list and the headline sentence format a detectable difference with one helper
    assert width_text(0.6) == "0.60" and width_text(0.0012) == "0.001"


def test_the_detectable_difference_table_does_not_round_a_tiny_width_to_zero():
    header, body = detectable_rows(table_with((0.02, 1.5), (0.0, 0.0012)))
    assert header == ["method", "Average"]
    assert body == [["m0", "±1.50"], ["m1", "±0.001"]]  # base has no row; 2 decimals would print ±0.00
