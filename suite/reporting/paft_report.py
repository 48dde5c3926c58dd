"""The PAFT reproduction report: delta sparsity, every model's scores, and PAFT's claims next to ours.

Reads only the stored runs of a results folder made from ``reports/recipes/paft.yaml`` (or any config
with ``paft`` / ``sft-then-dpo`` rows) and the paper's published data in ``reports/papers/paft.yaml``;
writes ``report/paft.md`` and ``report/paft_delta_histogram.png``. Each claim is decided by a small
function over the measured table, and the report says which numbers it compared.
"""

from __future__ import annotations

from pathlib import Path

from suite.core.errors import SuiteError
from suite.core.io import load_yaml_mapping, write_bytes_atomic
from suite.merging.delta import plot_histograms, sparsity_at
from suite.reporting.report import (
    AVERAGE_COLUMN,
    STATUS_COMPLETE,
    build_leaderboard,
    load_runs,
    markdown_table,
)

PAPER_FILE = Path(__file__).resolve().parent.parent / "reports" / "papers" / "paft.yaml"
# Claims about sparsity are judged by Hoyer's scale-free measure (a short run's deltas are all small, so
# thresholds alone say little) and, for PAFT's "> 90 %", the fraction with |δ| ≤ 0.1 % of mean |θ|.
EPSILON = 1e-3
MERGES = ("linear", "ties", "dare-ties")
# A difference of quick-leaderboard averages smaller than this is noise (tens of documents per task, one
# seed), so a claim that rests on one is "inconclusive", not reproduced or refuted.
AVERAGE_NOISE = 1.0


def collect_deltas(runs) -> dict[str, dict]:
    """Delta reports by component row ('sft', 'sft-l1', 'dpo', …), as the composites measured them."""
    deltas = {}
    for run in runs:
        if run.status != STATUS_COMPLETE:
            continue
        components = run.manifest.get("components") or {}
        measured = (run.metrics.get("train") or {}).get("delta") or {}
        for name, report in measured.items():
            component_id = components.get(name)
            component_label = _label_of(runs, component_id) if component_id else name
            deltas.setdefault(component_label, report)
    return deltas


def _label_of(runs, run_id: str) -> str:
    for run in runs:
        if run.run_id == run_id:
            return run.method
    return run_id


def _average(table, label: str):
    rows = table[table["method"] == label]
    return None if rows.empty or rows[AVERAGE_COLUMN].isna().all() else float(rows[AVERAGE_COLUMN].mean())


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def judge_claims(table, deltas: dict) -> list[tuple[str, str, str]]:
    """(claim id, what we measured, verdict) for each claim; 'not measured' when rows are missing."""
    verdicts = []

    def verdict(condition, difference: float | None = None):
        if condition is None:
            return "not measured"
        if difference is not None and abs(difference) < AVERAGE_NOISE:
            return f"inconclusive (|Δ| < {AVERAGE_NOISE:g})"
        return "reproduced" if condition else "not reproduced"

    sft, dpo, l1 = deltas.get("sft"), deltas.get("dpo"), deltas.get("sft-l1")
    hoyer = {name: report["overall"]["hoyer"] for name, report in deltas.items()}
    if sft and dpo:
        verdicts.append(("preference-delta-sparser",
                         f"Hoyer sparsity DPO {hoyer['dpo']:.3f} vs SFT {hoyer['sft']:.3f}; at ε={EPSILON:g}: "
                         f"{sparsity_at(dpo, EPSILON):.1%} vs {sparsity_at(sft, EPSILON):.1%}",
                         verdict(hoyer["dpo"] > hoyer["sft"])))
    else:
        verdicts.append(("preference-delta-sparser", "needs the sft and dpo deltas", verdict(None)))
    if l1:
        value = sparsity_at(l1, EPSILON)
        text = f"SFT-L1 at ε={EPSILON:g}: {value:.1%} (paper: > 90 %); Hoyer {hoyer['sft-l1']:.3f}"
        condition = value >= 0.9
        if sft:
            text += f" vs plain SFT {hoyer['sft']:.3f}"
            condition = condition and hoyer["sft-l1"] > hoyer["sft"]
        verdicts.append(("l1-sparsifies-sft", text, verdict(condition)))
    else:
        verdicts.append(("l1-sparsifies-sft", "needs an sft-l1 component", verdict(None)))

    paft = {label: _average(table, label) for label in table["method"].unique() if str(label).startswith("paft")}
    paft = {k: v for k, v in paft.items() if v is not None}
    sft_avg, dpo_avg, seq_avg = _average(table, "sft"), _average(table, "dpo"), _average(table, "sft-then-dpo")
    if paft and sft_avg is not None and dpo_avg is not None:
        best = max(paft, key=paft.get)
        verdicts.append(("merge-beats-components",
                         f"best merge {best} {paft[best]:.2f} vs SFT {sft_avg:.2f}, DPO {dpo_avg:.2f} (quick average)",
                         verdict(paft[best] > max(sft_avg, dpo_avg), paft[best] - max(sft_avg, dpo_avg))))
    else:
        verdicts.append(("merge-beats-components", "needs paft, sft and dpo rows", verdict(None)))
    if paft and seq_avg is not None:
        best = max(paft, key=paft.get)
        verdicts.append(("parallel-beats-sequential", f"best merge {best} {paft[best]:.2f} vs SFT→DPO {seq_avg:.2f}",
                         verdict(paft[best] > seq_avg, paft[best] - seq_avg)))
    else:
        verdicts.append(("parallel-beats-sequential", "needs paft and sft-then-dpo rows", verdict(None)))
    gains = {m: (paft.get(f"paft-{m}-l1"), paft.get(f"paft-{m}")) for m in MERGES}
    gains = {m: a - b for m, (a, b) in gains.items() if a is not None and b is not None}
    if len(gains) == len(MERGES):
        text = ", ".join(f"{m} {g:+.2f}" for m, g in gains.items())
        verdicts.append(("l1-helps-ties-most", f"average gain from L1: {text}",
                         verdict(min(gains["ties"], gains["dare-ties"]) > gains["linear"],
                                 min(gains["ties"], gains["dare-ties"]) - gains["linear"])))
    else:
        verdicts.append(("l1-helps-ties-most", "needs paft-{linear,ties,dare-ties} with and without -l1", verdict(None)))
    return verdicts


def write_paft_report(results_dir: Path, paper_file: Path = PAPER_FILE) -> Path:
    results_dir = Path(results_dir)
    paper = load_yaml_mapping(paper_file)
    runs = load_runs(results_dir)
    board = build_leaderboard(runs)
    table = board.table
    deltas = collect_deltas(runs)
    if not deltas:
        raise SuiteError(f"{results_dir}: no PAFT or SFT→DPO runs with measured deltas to report")
    report_dir = results_dir / "report"
    histogram = plot_histograms(deltas, report_dir / "paft_delta_histogram.png", "Delta magnitudes per component")

    epsilons = [row["relative_epsilon"] for row in next(iter(deltas.values()))["overall"]["sparsity"]]
    delta_rows = [[label, f"{r['overall']['entries']:,}", f"{r['overall']['relative_norm']:.3g}",
                   f"{r['overall']['hoyer']:.3f}", *(f"{sparsity_at(r, e):.1%}" for e in epsilons)]
                  for label, r in sorted(deltas.items())]
    model_rows = []
    for _, row in table.iterrows():
        model_rows.append([row["method"], _fmt(row[AVERAGE_COLUMN]), _fmt(row.get("reward_accuracy"), 3),
                           _fmt(row.get("reward_margin"), 3), _fmt(row.get("logp_accuracy"), 3)])
    published = paper["published"]["open_llm_v1_average"]
    claims = {c["id"]: c["text"] for c in paper["claims"]}
    verdicts = judge_claims(table, deltas)
    lines = [
        f"# PAFT reproduction — {paper['paper']} (arXiv {paper['arxiv']})", "",
        f"Results folder `{results_dir}`; every measured number below comes from its stored runs. Scores use the "
        "`quick` leaderboard (cut-down, **not comparable** with the Open LLM Leaderboard) on SmolLM2-135M-Instruct; "
        f"the paper's numbers are for 7–8B models. Paper data: `{Path(paper_file).name}` — {paper['source'].strip()}",
        "", "## Delta sparsity (fraction of |δ| ≤ ε · mean|θ_base| per weight)", "",
        markdown_table(["component", "entries", "‖δ‖/‖θ‖", "Hoyer", *(f"ε = {e:g}" for e in epsilons)], delta_rows),
        "", "Hoyer sparsity is scale-free: 0 when all entries are equal in size, 1 when one entry holds the whole "
        "delta.", "",
        f"![delta histogram]({histogram.name})", "",
        "## Models", "",
        markdown_table(["row", "quick average", "reward accuracy", "reward margin", "log-prob accuracy"], model_rows),
        "", f"Paper (Open LLM v1 average): SFT {published['sft']}, DPO {published['dpo']}, PAFT {published['paft']}.",
        "", "## Claims", "",
        markdown_table(["claim", "paper", "measured", "verdict"],
                       [[cid, claims.get(cid, ""), measured, verdict] for cid, measured, verdict in verdicts]),
        "", f"Claims resting on quick-average differences below {AVERAGE_NOISE:g} point are marked inconclusive: "
        "`quick` scores tens of documents per task with one seed.", "",
    ]
    path = report_dir / "paft.md"
    write_bytes_atomic(path, "\n".join(lines).encode())
    return path
