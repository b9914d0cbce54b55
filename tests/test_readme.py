"""The README's results section is written from the records and its template, never by hand;
the README itself stays short and says what a newcomer needs first."""

from pathlib import Path

from publish_tools import fixture

from helpers.catalogue import experiments
from helpers.publish import summary, tables
from helpers.runs.records import load
from helpers.runs.runner import parse_seeds

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "notebooks" / summary.TEMPLATE


def committed():
    return tables.published(load(REPO / "results"))


def test_committed_readme_shows_the_committed_records():
    # Fails when README.md's results were edited by hand, or results/ or the template changed
    # without `python -m helpers summary` being rerun.
    text = (REPO / "README.md").read_text()
    section = text.split(tables.README_START, 1)[1].split(tables.README_END, 1)[0].strip()
    assert section == tables.readme_block(committed(), TEMPLATE)


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
    assert len(text.split()) <= 1500, len(text.split())  # read in five minutes
    first_screen = text[:text.index("## Results")]
    assert "make report" in first_screen and "make test" in first_screen
    assert "source .venv/bin/activate" in first_screen


def test_every_relative_link_of_the_readme_and_the_docs_points_at_a_file():
    import re

    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"^[a-z]+:", target):
                assert (page.parent / target).exists(), f"{page.name}: {target}"
