"""The reports' one set of number formatters and table renderers (Markdown, HTML, LaTeX, CSV cells).

Every view in ``suite.reporting`` formats numbers and draws tables through these, so a number reads the
same in report.md, the leaderboard files, index.html and the reproduction reports: "—" for a missing
value, two decimals for scores in percent, three for other metrics.
"""

from __future__ import annotations

import html
import math
import re

from suite.analysis.tables import FRACTION, PERCENT, SECONDS

MISSING = "—"


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value, digits: int = 2, signed: bool = False) -> str:
    """A number with ``digits`` decimals (``signed``: always with its sign); "—" when missing."""
    if is_missing(value):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def value_text(kind: str, value, whole: bool = False) -> str:
    """A stored number in its column's units: fractions as percentages, percentages and seconds as they are,
    other numbers with three decimals (``whole``: an integral column, shown without decimals)."""
    if is_missing(value):
        return MISSING
    if kind == FRACTION:
        return fmt(100 * value)
    if kind == PERCENT:
        return fmt(value)
    if kind == SECONDS:
        return fmt(value, 1)
    return f"{int(value)}" if whole and float(value).is_integer() else fmt(value, 3)


def spread_text(mean_text: str, spread, spread_text_of) -> str:
    """``mean ± spread`` when both are there, else the mean alone."""
    if is_missing(spread) or mean_text == MISSING:
        return mean_text
    return f"{mean_text} ± {spread_text_of(spread)}"


def whole_numbers(values) -> bool:
    """Every present value is a whole number (and there is one): such columns are shown without decimals."""
    present = [v for v in values if not is_missing(v)]
    return bool(present) and all(float(v).is_integer() for v in present)


def csv_number(value, whole: bool = False) -> str:
    """A CSV cell: empty when missing, full precision otherwise (``whole``: without a trailing .0)."""
    if is_missing(value):
        return ""
    return str(int(value)) if whole else repr(float(value))


# -- Markdown -------------------------------------------------------------------------------------


def escape_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(escape_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows])


# -- HTML -----------------------------------------------------------------------------------------

HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.text, th.text { text-align: left; }
tr.base td { font-weight: 600; }
.warning { border-left: 4px solid #c00; padding: 0.5em 1em; background: #fff4f4; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""

# Click a header to sort by that column (numbers by value, text alphabetically; empty cells last); click
# again to reverse. Rows carry their sort keys in data-value, so formatting does not matter.
HTML_SORT_SCRIPT = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    var number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sortBy(table, column, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var descending = header.getAttribute("aria-sort") === "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.addEventListener("click", function () { sortBy(table, column, header); });
    });
  });
})();
"""


def sort_value(text: str) -> str:
    """The number a cell starts with ("45.20 ± 1.1" → 45.2), '' for a missing value, else the text."""
    head = text.split(" ")[0].replace("+", "")
    if text in (MISSING, "missing", "(base)") or text.startswith("n/a"):
        return ""
    try:
        return repr(float(head))
    except ValueError:
        return text


def html_table(header: list[str], rows: list[list[str]], text_columns: int, row_classes: list[str] | None = None,
               table_id: str = "", cell_classes: list[list[str]] | None = None, markup: bool = False) -> str:
    """A sortable table (``table.sortable``: the page adds ``HTML_STYLE`` and ``HTML_SORT_SCRIPT``). The first
    ``text_columns`` columns sort as text, the rest by the number they start with. Cells are plain text,
    escaped here, or with ``markup`` already escaped HTML (their text is the sort key)."""
    id_attr = f' id="{html.escape(table_id)}"' if table_id else ""
    lines = [f'<table class="sortable"{id_attr}>', "<thead><tr>"]
    lines += [f'<th class="{"text" if i < text_columns else "num"}">{h if markup else html.escape(h)}</th>'
              for i, h in enumerate(header)]
    lines += ["</tr></thead>", "<tbody>"]
    for r, row in enumerate(rows):
        css = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = []
        for i, cell in enumerate(row):
            classes = ["text" if i < text_columns else "num"]
            if cell_classes and cell_classes[r][i]:
                classes.append(cell_classes[r][i])
            plain = html.unescape(re.sub(r"<[^>]+>", "", cell)) if markup else cell
            value = plain if i < text_columns else sort_value(plain)
            cells.append(f'<td class="{" ".join(classes)}" data-value="{html.escape(value)}">'
                         f"{cell if markup else html.escape(cell)}</td>")
        lines.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def html_list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


# -- LaTeX ----------------------------------------------------------------------------------------

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_cell(text: str) -> str:
    """Escaped cell text; a ± already written as $\\pm$ stays math, Δ becomes $\\Delta$."""
    parts = text.split("$\\pm$")
    return "$\\pm$".join(latex_escape(p) for p in parts).replace(MISSING, "--").replace("Δ", "$\\Delta$")


def latex_table(header: list[str], rows: list[list[str]], text_columns: int, title: str, caption: str) -> str:
    """A booktabs ``tabular`` in a table float (needs \\usepackage{booktabs})."""
    align = "l" * text_columns + "r" * (len(header) - text_columns)
    lines = [f"% {title} (needs \\usepackage{{booktabs}})", "\\begin{table}[t]", "\\centering", "\\small",
             f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(latex_cell(h) for h in header) + " \\\\",
             "\\midrule"]
    lines += [" & ".join(latex_cell(c) for c in row) + " \\\\" for row in rows]
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"
