"""report/index.html: one self-contained page per results folder (suite.reporting.html), checked as text and in a
real headless Chromium (Debian's chromium + chromedriver through selenium; skipped when they are missing).

The results folder is the reproduction tests' toy store (runs written as the runner writes them, from
per-document results), plus a failed run with its ``failure`` record, an unfinished run and training logs,
and the reproduction report ``alignsuite reproduce`` writes from those runs.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.stores import ROW_DOCS, spec_file, train_log, write_run
from support.papers import toy_paper

from suite.cli import main
from suite.core.errors import SuiteError
from suite.analysis.claims import find_table, recipe_path
from suite.analysis.tables import build_table, collect_runs
from suite.reporting.html import write_html_report
from suite.reporting.render import fmt
from suite.reporting.reproduce import write_reproduction_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ERROR = "TrainingDiverged: training diverged: loss is nan at step 5 <in 'dpo' & co>"
FAILURE = {"kind": "non-finite", "key": "loss", "step": 5, "last_checkpoint": "checkpoint-4"}


def _update_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def make_results(root: Path) -> dict:
    """The toy paper's runs + a failed and an unfinished run, train logs, and its reproduction report. Every
    manifest's config names the spec file, as the runner's do (how the page finds a spec that is not shipped)."""
    papers, results = toy_paper(root)
    spec_path = spec_file(root / "specs")
    for run_id, start in (("strong-s0-1111", 0.7), ("weak-s0-2222", 0.9)):
        (results / "runs" / run_id / "train_log.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in train_log(start)))
    failed = write_run(results, spec_path, "dpo-s1-4444", "strong", 1, {}, status="failed")
    _update_manifest(failed, error=ERROR, failure=FAILURE)
    (failed / "error.log").write_text("Traceback (most recent call last):\n  ...\n" + ERROR + "\n")
    running = write_run(results, spec_path, "kto-s1-5555", "weak", 1, {}, status="running")
    for folder in (results / "runs").iterdir():
        _update_manifest(folder, config={"eval": {"leaderboard": str(spec_path)}})
    table = find_table("toy-table", papers)
    write_reproduction_report(table, "small", recipe_path(table, "small"), results, resamples=200)
    board = build_table(collect_runs([results], str(spec_path)))
    return {"results": results, "spec": spec_path, "board": board, "failed": failed.name, "running": running.name,
            "reproduction": json.loads((results / "report" / "reproduce-toy-table.json").read_text())}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    made = make_results(tmp_path_factory.mktemp("html"))
    made["index"] = write_html_report(made["results"], significance_resamples=200)
    return made


class PageReader(HTMLParser):
    """Tables (by id: header and rows of cell text), images, every src/href, manifest blocks."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.links, self.manifests = {}, [], [], []
        self._table = self._row = self._cell = self._pre = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), {"header": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = [tag, ""]
        elif tag == "details" and "manifest" in (attrs.get("class") or ""):
            self.manifests.append("")
            self._pre = len(self.manifests) - 1

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if all(kind == "th" for kind, _ in self._row):
                self._table["header"] = [text for _, text in self._row]
            else:
                self._table["rows"].append([text for _, text in self._row])
            self._row = None
        elif tag == "details":
            self._pre = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._pre is not None:
            self.manifests[self._pre] += data


def read_page(path: Path) -> tuple[str, PageReader]:
    text = path.read_text()
    reader = PageReader()
    reader.feed(text)
    return text, reader


def test_the_page_holds_tables_plots_verdicts_failures_and_manifests(page):
    assert page["index"] == page["results"] / "report" / "index.html"
    text, reader = read_page(page["index"])
    board = page["board"]

    # self-contained: images are data URIs, links only point inside the page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text, re.I)
    assert all(src.startswith("data:image/png;base64,") for src in reader.images)
    assert all(link.startswith(("data:", "#")) for link in reader.links)
    assert "<link" not in text and "@import" not in text

    # the leaderboard tables, numbers as stored
    methods = reader.tables["tiny-board-methods"]
    assert [row[0] for row in methods["rows"]] == [row.method for row in board.rows]
    strong = next(row for row in board.rows if row.method == "strong")
    strong_cells = next(cells for cells in methods["rows"] if cells[0] == "strong")
    assert strong_cells[methods["header"].index("quiz")] == fmt(strong.mean["quiz"])
    runs = reader.tables["tiny-board-runs"]
    assert [row[0] for row in runs["rows"]] == [run.run_id for run in board.runs]
    assert len(reader.tables["tiny-board-alignment"]["rows"]) == len(board.rows)

    # the plots: every suite.reporting.plots figure there is something to draw for, as PNG
    assert len(reader.images) == 4  # task bars, frontier, training curves (two runs have logs), heat-map
    for src in reader.images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)

    # the reproduction's verdicts as alignsuite reproduce stored them
    claims = reader.tables["reproduce-toy-table-claims"]
    stored = page["reproduction"]["claims"]
    assert [row[0] for row in claims["rows"]] == [c["id"] for c in stored]
    assert [row[-1].split(" (")[0] for row in claims["rows"]] == [c["verdict"] for c in stored]
    assert {"agrees", "disagrees", "inconclusive", "not measured"} <= {c["verdict"] for c in stored}
    numbers = reader.tables["reproduce-toy-table-numbers"]
    strong_numbers = next(cells for cells in numbers["rows"] if cells[0] == "Strong")
    assert strong_numbers[numbers["header"].index("Average (ours)")] == \
        fmt(page["reproduction"]["ours"]["Strong"]["Average"])
    assert strong_numbers[numbers["header"].index("Human (ours)")] == "not measured"

    # failed and unfinished runs, with the failure record and the end of error.log
    failed = {row[0]: row for row in reader.tables["failed-runs"]["rows"]}
    assert set(failed) == {page["failed"], page["running"]}
    assert failed[page["failed"]][3] == "failed" and failed[page["failed"]][4] == ERROR
    assert "step: 5" in failed[page["failed"]][5] and "last_checkpoint: checkpoint-4" in failed[page["failed"]][5]
    assert failed[page["running"]][3].startswith("incomplete")

    # every run's manifest, pretty-printed and escaped
    stored_manifests = {folder.name: json.loads((folder / "manifest.json").read_text())
                        for folder in (page["results"] / "runs").iterdir()}
    shown = [json.loads(block[block.index("{"):]) for block in reader.manifests]  # after the <summary> text
    assert len(shown) == len(stored_manifests) == 6
    assert all(manifest == stored_manifests[manifest["run_id"]] for manifest in shown)
    assert next(m for m in shown if m["run_id"] == page["failed"])["failure"] == FAILURE
    assert "<in 'dpo' & co>" not in text and "&lt;in &#x27;dpo&#x27; &amp; co&gt;" in text


def test_several_leaderboards_each_get_their_tables_and_an_old_markdown_reproduction_is_shown(tmp_path):
    made = make_results(tmp_path)
    other = write_run(made["results"], made["spec"], "dpo-s0-6666", "dpo", 0, ROW_DOCS["strong"], leaderboard="quick")
    (made["results"] / "report" / "reproduce-old-table.md").write_text("# Reproduction: old <table>\n")  # no .json
    path = write_html_report(made["results"], significance_resamples=0)
    text, reader = read_page(path)
    assert [row[0] for row in reader.tables["quick-runs"]["rows"]] == [other.name]  # shipped spec: found by name
    assert "tiny-board-methods" in reader.tables and len(reader.tables["tiny-board-runs"]["rows"]) == 4
    assert "No readable verdicts file (<code>reproduce-old-table.json" in text
    assert "# Reproduction: old &lt;table&gt;" in text and "reproduce-toy-table-claims" in reader.tables


def test_no_runs_or_no_leaderboard_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SuiteError, match="there are no runs to report"):
        write_html_report(tmp_path)
    with pytest.raises(SuiteError, match="no such results directory"):
        write_html_report(tmp_path / "nowhere")
    spec_path = spec_file(tmp_path / "specs")
    folder = write_run(tmp_path, spec_path, "dpo-s0-7777", "dpo", 0, ROW_DOCS["strong"])
    _update_manifest(folder, leaderboard=None)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("eval_settings")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SuiteError, match=r"no complete run was evaluated on a leaderboard \(1 complete of 1 runs\)"):
        write_html_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 0  # report.md still; the page is left out, saying why
    assert "index: not written (" in capsys.readouterr().out
    _update_manifest(folder, leaderboard="tiny-board")  # a spec neither shipped nor named by the run's config
    with pytest.raises(SuiteError, match="tiny-board: the spec is not in leaderboards/"):
        write_html_report(tmp_path)
    assert write_html_report(tmp_path, specs=[str(spec_path)], significance_resamples=0).is_file()


def test_the_report_command_writes_the_page(tmp_path, capsys):
    made = make_results(tmp_path)
    assert main(["report", str(made["results"])]) == 0
    out = capsys.readouterr().out
    index = made["results"] / "report" / "index.html"
    assert f"index: {index}" in out and index.is_file()
    assert "reproduce-toy-table-claims" in index.read_text()


# -- in a real browser ----------------------------------------------------------------------------


def chromium_driver(chromium: str = CHROMIUM, chromedriver: str = CHROMEDRIVER):
    """Headless Chromium through chromedriver, or a skip saying what is missing."""
    missing = [path for path in (chromium, chromedriver) if not Path(path).is_file()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver; "
                    "`nox -s tests` installs them when run as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=options)


CHECK_PAGE = """
const table = (id) => document.getElementById(id);
const rows = (id) => table(id) ? table(id).tBodies[0].rows.length : -1;
return {
  ready: document.readyState,
  title: document.title,
  tables: document.querySelectorAll("table").length,
  rows: Object.fromEntries(arguments[0].map((id) => [id, rows(id)])),
  images: Array.from(document.images).map((img) => ({complete: img.complete, width: img.naturalWidth,
                                                    height: img.naturalHeight})),
  fetched: performance.getEntriesByType("resource").map((entry) => entry.name),
  manifests: document.querySelectorAll("details.manifest").length,
  width: document.body.scrollWidth,
};
"""

SORT_BY = """
const header = Array.from(document.getElementById(arguments[0]).tHead.rows[0].cells)
  .find((cell) => cell.textContent === arguments[1]);
const column = Array.prototype.indexOf.call(header.parentNode.cells, header);
header.click();
return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)
  .map((row) => row.cells[column].getAttribute("data-value"));
"""


def test_the_page_renders_in_headless_chromium(page):
    driver = chromium_driver()
    try:
        driver.set_page_load_timeout(60)
        driver.get(page["index"].resolve().as_uri())
        expected = {"tiny-board-methods": len(page["board"].rows), "tiny-board-runs": len(page["board"].runs),
                    "tiny-board-alignment": len(page["board"].rows),
                    "reproduce-toy-table-claims": len(page["reproduction"]["claims"]),
                    "failed-runs": 2}
        state = driver.execute_script(CHECK_PAGE, list(expected))
        assert state["ready"] == "complete" and state["title"] == "alignsuite report: tiny"
        assert state["rows"] == expected  # every table there, with its rows
        assert len(state["images"]) == 4
        assert all(img["complete"] and img["width"] > 0 and img["height"] > 0 for img in state["images"]), \
            state["images"]
        assert state["fetched"] == []  # nothing loaded from anywhere
        assert state["manifests"] == 6
        # the sort script ran: a click on a header orders the rows, empty cells last
        values = driver.execute_script(SORT_BY, "tiny-board-methods", "Average")
        numbers = [float(v) for v in values if v]
        assert numbers == sorted(numbers) and values[len(numbers):] == [""] * (len(values) - len(numbers))
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []  # no script errors, nothing failed to load
    finally:
        driver.quit()


def test_without_chromium_the_browser_test_skips_saying_how_to_get_it(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium chromium-driver"):
        chromium_driver(str(tmp_path / "chromium"), str(tmp_path / "chromedriver"))
