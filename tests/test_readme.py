"""The README's results section is written from the records and its template, never by hand;
the README itself stays short and says what a newcomer needs first."""

from pathlib import Path

from publish_tools import fixture

from helpers.catalogue import DEFAULTS, experiments
from helpers.publish import summary, tables
from helpers.runs.records import load
from helpers.runs.runner import parse_seeds

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "notebooks" / summary.TEMPLATE


def committed():
    return tables.published(load(REPO / "results"))


def head_study():
    return tables.published(load(REPO / "validation", experiments.HEAD_STUDY))


def test_committed_readme_shows_the_committed_records():
    # Fails when README.md's results were edited by hand, or results/ or the template changed
    # without `python -m helpers summary` being rerun.
    text = (REPO / "README.md").read_text()
    section = text.split(tables.README_START, 1)[1].split(tables.README_END, 1)[0].strip()
    assert section == tables.readme_block(committed(), TEMPLATE, head_study())


def test_the_committed_records_are_every_report_rows_and_nothing_else():
    # what the README promises: `make report` on a clone finds every run of the report recorded
    # (it retrains nothing), and publishes no record that is not its row's
    found = committed()
    assert not found.left_out and not found.damaged
    have = {(r["experiment"], r["seed"]) for r in found.records}
    for name in experiments.expand(["report"]):
        for seed in parse_seeds(experiments.EXPERIMENTS[name]["seeds"]):
            assert (name, seed) in have, (name, seed)
    assert "retrains nothing" in " ".join((REPO / "README.md").read_text().split())


def test_readme_section_is_rewritten_between_the_markers_only():
    text = f"# Title\n\nintro\n\n{tables.README_START}\nold numbers\n{tables.README_END}\n\nafter\n"
    block = tables.readme_block(fixture(), TEMPLATE)
    new = tables.readme_text(text, block)
    assert new == f"# Title\n\nintro\n\n{tables.README_START}\n{block}\n{tables.README_END}\n\nafter\n"
    assert tables.readme_text(new, block) == new  # the same records: the same text


def test_the_speed_page_shows_the_committed_benchmark_output():
    # The benchmark figures are the printed output of `python -m helpers bench`, kept in
    # docs/bench/cpu.txt, not typed: docs/speed.md must show that file as it is.
    page = (REPO / "docs" / "speed.md").read_text()
    output = (REPO / "docs" / "bench" / "cpu.txt").read_text().rstrip("\n")
    assert f"```\n{output}\n```" in page
    assert output.startswith("machine: ") and "make report from scratch" in output


def test_the_readme_stays_short_and_starts_with_what_and_how():
    text = (REPO / "README.md").read_text()
    assert len(text.split()) <= 1300, len(text.split())  # read in five minutes
    first_screen = text[:text.index("## Results")]
    assert "make report" in first_screen and "make test" in first_screen
    assert "source .venv/bin/activate" in first_screen


def test_every_relative_link_of_the_readme_and_the_docs_points_at_a_file():
    import re

    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"^[a-z]+:", target):
                assert (page.parent / target).exists(), f"{page.name}: {target}"


def record_numbers():
    """Every number the README's prose may state, computed here from the record files (json
    alone) and the catalogue: means, gaps and their spans in percent, sizes, the budget, the
    parameters the rows run with, the head study, the paired tests' family."""
    import json
    import statistics

    def runs(folder, name):
        paths = sorted((REPO / folder / name).glob("seed-*.json"))
        return [json.loads(path.read_text()) for path in paths]

    def mean(folder, name, key):
        return statistics.mean(r[key] for r in runs(folder, name))

    said = set()
    rows = [row for row in experiments.CATALOGUE if row.get("report") and not row.get("beside")]
    aux = [row["name"] for row in rows if row["params"].get("weighting", "none") != "none"]
    gaps = {}
    for row in rows:
        for name in (row["name"], f"{row['name']}-first"):
            if (REPO / "results" / name).is_dir():
                for key, at in (("train_error_rate", 2), ("test_error_rate", 4)):
                    gaps[(name, key)] = mean("results", name, key) - row["report"][at]
    for kind in ("train_error_rate", "test_error_rate"):
        for group in (aux, [f"{name}-first" for name in aux],
                      [n for n in aux if gaps[(n, "test_error_rate")] < 0]):
            values = [abs(gaps[(n, kind)]) for n in group if (n, kind) in gaps]
            said |= {f"{min(values):.2f}", f"{max(values):.2f}"} if values else set()
    said |= {f"{v:+.2f}" for v in gaps.values()}
    for path in (REPO / "results").glob("*/seed-0.json"):
        path = path.parent
        said.add(f"{mean('results', path.name, 'test_error_rate'):.2f}")
        said.add(f"{runs('results', path.name)[0]['n_parameters']:,}")
    for path in (REPO / "results").glob("*/seed-1000.json"):
        said.add(f"{mean('results', path.parent.name, 'test_error_rate'):.2f}")
    for row in rows:
        said.add(f"{row['report'][4]:.2f}")
    for name in experiments.HEAD_STUDY:
        said.add(f"{mean('validation', name, 'test_error_rate'):.2f}")
    said |= {f"{experiments.MAX_BUDGET_PARAMETERS:,}", str(len(experiments.COMPARISONS)),
             str(len(aux)), f"{DEFAULTS['n_pairs']:,}"}
    said |= {str(v) for name in ("ws-aux", "same-budget", "ws")
             for v in experiments.resolve(name).values()}
    said |= {str(DEFAULTS[name]) for name in experiments.REPORT_BUDGET}
    said |= {str(n) for n in range(len(experiments.COMPARISONS) + 1)}  # counts of verdicts
    return said


def test_every_number_in_the_readmes_prose_is_one_the_records_give():
    # The README's sentences about sizes, budgets, readings, train errors and verdicts are
    # rendered from the records by the template: a number typed by hand, or one the records no
    # longer give, fails here. Tables, code, names in backticks, links and equation numbers aside.
    import re

    text = (REPO / "README.md").read_text()
    block = text.split(tables.README_START, 1)[1].split(tables.README_END, 1)[0]
    prose = [line for line in block.splitlines() if line and not line.startswith("|")
             and not line.startswith("![") and not line.startswith("They reproduce")]
    stripped = [re.sub(r"`[^`]*`|\]\([^)]*\)|eq\. \(\d\)|Eq\. \(\d\)|Tables? [IV]+|"
                       r"L<sub>\w+</sub>|\bseeds? [\d, -]+", "", line) for line in prose]
    numbers = [n for line in stripped for n in re.findall(r"[+-]?\d[\d,]*(?:\.\d+)?", line)]
    assert len(numbers) > 20  # the prose does state numbers
    allowed = record_numbers()
    assert [n for n in numbers if n.rstrip(",") not in allowed
            and n.rstrip(",").lstrip("+-") not in allowed] == []
    # and the claims the issue of sizes names, against the records
    assert "`ws-aux` now runs 99,680 parameters, its first rebuild 53,492" in text or \
        "99,680" not in text
    assert "cap of 80,000 parameters that this project set, not the report" in text
