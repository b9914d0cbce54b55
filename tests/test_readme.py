"""The README's results section is written from the records, never by hand."""

from pathlib import Path

import pytest

from helpers import UsageError
from helpers.publish import summary, tables
from helpers.runs.records import load

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"


def test_committed_readme_shows_the_committed_records():
    # Fails when README.md's results were edited by hand or results/ changed without
    # `python -m helpers summary` being rerun.
    text = (REPO / "README.md").read_text()
    section = text.split(tables.README_START, 1)[1].split(tables.README_END, 1)[0].strip()
    assert section == tables.readme_results(load(REPO / "results")).strip()


def test_readme_section_is_rewritten_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{tables.README_START}\nold numbers\n"
                      f"{tables.README_END}\n\nafter\n")
    found = load(FIXTURE)
    assert summary.update_readme(readme, found) is True
    text = readme.read_text()
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith("\n\nafter\n")
    assert "old numbers" not in text and "**Test error**" in text and "Far from the report" in text
    # ours beside the report's row, one unit per column
    assert "| `ws-aux` | Table III, WS+AuxLoss | 2 | **50.0** | 5.7 | 6.9 | 5.5 | +43.1 |" in text
    assert summary.update_readme(readme, found) is False  # second time: nothing to change
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="no results markers"):
        summary.update_readme(readme, load(FIXTURE))
    assert readme.read_text() == "# no markers\n"
    with pytest.raises(UsageError, match="has no results markers: put the lines"):
        summary.check_readme(readme)
    with pytest.raises(UsageError, match="does not exist: give an existing file with --readme"):
        summary.check_readme(tmp_path / "missing.md")


def test_readme_numbers_are_those_of_the_tables():
    found = load(FIXTURE)
    table = tables.report_table(found)
    section = tables.readme_results(found)
    for _, row in table.iterrows():
        if row["rounds"]:
            sd = "-" if row["rounds"] < 2 else f"{row['test_sd']:.1f}"
            assert (f"| `{row['experiment']}` | Table {row['table']}, {row.name} | {row['rounds']} | "
                    f"**{row['test_pct']:.1f}** | {sd} | {row['report_test_pct']:.1f} | "
                    f"{row['report_test_sd']:.1f} | {row['test_gap']:+.1f} |") in section
            if row["far"]:  # a far row is named with its far gaps, train ones included
                gaps = ", ".join(f"{kind} {row[f'{kind}_gap']:+.1f}" for kind in
                                 row["far"].split(", "))
                assert f"`{row['experiment']}` ({gaps})" in section


def test_the_speed_page_shows_the_committed_benchmark_output():
    # The benchmark figures are the printed output of `python -m helpers bench`, kept in
    # docs/bench/cpu.txt, not typed: docs/speed.md must show that file as it is.
    page = (REPO / "docs" / "speed.md").read_text()
    output = (REPO / "docs" / "bench" / "cpu.txt").read_text().rstrip("\n")
    assert f"```\n{output}\n```" in page
    assert output.startswith("machine: ") and "make report from scratch" in output


def test_the_readme_stays_short_and_starts_with_what_and_how():
    text = (REPO / "README.md").read_text()
    assert len(text.split()) <= 1200, len(text.split())
    first_screen = text[:text.index("## Results")]
    assert "make report" in first_screen and "make test" in first_screen
    assert "source .venv/bin/activate" in first_screen
