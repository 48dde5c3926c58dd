"""The survey's comparison table, generated from the registry: one row per method, one column per direction.

Wang et al., "A Comprehensive Survey of LLM Alignment Techniques: RLHF, RLAIF, PPO, DPO and More"
(arXiv 2407.16216) compares methods along 13 directions in four pillars (reward model, feedback, RL,
optimisation). Every registered method states its position on each (see ``suite.method.registry.TAXONOMY``);
this module only lays the registry out as that table.
"""

from __future__ import annotations

import csv
import io

from suite.method.registry import TAXONOMY, Method

# The "online" direction already says whether a method needs online sampling.
NEEDS_COLUMNS = ("feedback", "needs reference", "needs reward model")


def taxonomy_columns() -> list[str]:
    return ["method", *(direction for _, direction, _ in TAXONOMY), *NEEDS_COLUMNS, "paper"]


def taxonomy_rows(methods: list[Method]) -> list[dict]:
    """One dict per method with the columns of :func:`taxonomy_columns`."""
    rows = []
    for method in methods:
        row = {"method": method.id}
        row.update({direction: method.taxonomy[direction] for _, direction, _ in TAXONOMY})
        row.update({
            "feedback": method.feedback,
            "needs reference": "yes" if method.needs_reference else "no",
            "needs reward model": "yes" if method.needs_reward_model else "no",
            "paper": method.paper.cite(),
        })
        rows.append(row)
    return rows


def render_markdown(rows: list[dict]) -> str:
    columns = taxonomy_columns()
    pillars = {direction: pillar for pillar, direction, _ in TAXONOMY}
    header = [f"{c} ({pillars[c]})" if c in pillars else c for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]).replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=taxonomy_columns(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def render_text(rows: list[dict]) -> str:
    """An aligned plain-text table for the terminal (the paper column left out: it is long)."""
    columns = [c for c in taxonomy_columns() if c != "paper"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


RENDERERS = {"text": render_text, "md": render_markdown, "csv": render_csv}
