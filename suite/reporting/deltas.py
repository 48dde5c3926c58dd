"""``alignsuite delta BASE TUNED [--out DIR]``: a fine-tuned model's delta, its sparsity and its histogram.

The measurement is ``suite.merging.delta``; this writes it as ``DIR/delta.json`` and draws
``DIR/delta_histogram.png`` (``suite.reporting.plots.delta_histograms``).
"""

from __future__ import annotations

from pathlib import Path

from suite.core.io import write_json_atomic
from suite.merging.delta import delta_report, format_summary, resolve_model
from suite.reporting.plots import delta_histograms, save_png


def delta_command(args) -> int:
    base = resolve_model(args.base)
    tuned = resolve_model(args.tuned, base_id=args.base)
    report = delta_report(base, tuned)
    print(format_summary(report))
    out = Path(args.out or "delta")
    write_json_atomic(out / "delta.json", {"base": args.base, "tuned": args.tuned, **report})
    save_png(delta_histograms({Path(args.tuned).name or args.tuned: report}), out / "delta_histogram.png")
    print(f"wrote {out / 'delta.json'} and {out / 'delta_histogram.png'}")
    return 0
