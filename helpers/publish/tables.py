"""The report's Tables III and IV rebuilt from the run records beside its published numbers,
the cost of each configuration, a conclusion written from the numbers, and the README's
results section.

Conventions of the report (docs/protocol.md): errors in percent are means over the rounds; the
SD is the standard deviation of the NUMBER of errors (sample SD, ddof=1, as torch.std computes
it). Every table counts the rounds behind each row and marks a row with fewer rounds than
expected: nothing is silently averaged over fewer rounds. Damaged records are named and left
out. `found` is what `runs.records.load` read from a results folder.
"""

from pathlib import Path

import pandas as pd

from ..catalogue import experiments
from ..catalogue.parameters import RUN_ONLY
from . import stats

# Parameters that may differ between the rounds of one protocol: the round itself, those that
# never change what is computed, and the thread count (it changes the numbers, not the protocol).
_NOT_PROTOCOL = ("experiment", "seed", "threads", *RUN_ONLY)


def describe(found):
    """A few lines on what was found: records, configurations, damaged files left out."""
    if not found.records:
        lines = [f"No run records under {found.folder} yet: run `python -m helpers run all "
                 f"--seeds 0-9` (or `make report`) to produce them."]
    else:
        frame = found.frame
        lines = [f"{len(frame)} run records of {frame['experiment'].nunique()} configurations "
                 f"under {found.folder}."]
    for path, reason in found.damaged:
        lines.append(f"Damaged record left out: {Path(path).parent.name}/{Path(path).name} "
                     f"({reason}); rerunning that run replaces it.")
    return "\n".join(lines)


def ordered_experiments(frame):
    """Experiments with records, in catalogue order, then any others by name."""
    present = set(frame["experiment"])
    known = [row["name"] for row in experiments.CATALOGUE if row["name"] in present]
    return known + sorted(present - set(known))


def _protocol_note(records):
    """'' when the records ran the catalogue's parameters, else what differs."""
    if not records:
        return ""
    name = records[0]["experiment"]
    if name not in experiments.EXPERIMENTS:
        return "not in the catalogue"
    protocol = experiments.resolve(name)
    differing = {}
    for record in records:
        for key, value in record["params"].items():
            if key not in _NOT_PROTOCOL and key in protocol and protocol[key] != value:
                differing.setdefault(key, set()).add(repr(value) if isinstance(value, str)
                                                     else str(value))
    if not differing:
        return ""
    return "not the report's protocol: " + ", ".join(
        f"{key}={'/'.join(sorted(values))}" for key, values in sorted(differing.items()))


def expected_rounds_of(found, expected_rounds=None):
    """Rounds each row should count: the argument, else the most rounds any configuration has."""
    if expected_rounds:
        return int(expected_rounds)
    frame = found.frame
    return int(frame.groupby("experiment").size().max()) if len(frame) else 0


def configuration_stats(found):
    """Per experiment: rounds, seeds, mean error rates, SD of the error counts, cost."""
    frame = found.frame
    columns = ["rounds", "seeds", "train_pct", "train_sd", "test_pct", "test_sd",
               "n_parameters", "seconds", "n_test"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby("experiment")
    per_config = pd.DataFrame({
        "rounds": grouped.size(),
        "seeds": grouped["seed"].agg(lambda s: ",".join(map(str, sorted(s)))),
        "train_pct": grouped["train_error_rate"].mean(),
        "train_sd": grouped["train_errors"].std(ddof=1),
        "test_pct": grouped["test_error_rate"].mean(),
        "test_sd": grouped["test_errors"].std(ddof=1),
        "n_parameters": grouped["n_parameters"].agg(lambda s: "/".join(map(str, sorted(set(s))))),
        "seconds": grouped["seconds"].mean(),
        "n_test": grouped["n_test"].max(),
    })
    return per_config.loc[ordered_experiments(frame), columns]


def report_table(found, table, expected_rounds=None):
    """The report's Table `table` ("III" or "IV") rebuilt: one row per configuration, ours
    beside the published numbers, the rounds counted, and a note on incomplete rows."""
    per_config = configuration_stats(found)
    expected = expected_rounds_of(found, expected_rounds)
    rows = []
    for row in experiments.CATALOGUE:
        if not row.get("report") or row["report"][0] != table:
            continue
        _, label, train, train_sd, test, test_sd = row["report"]
        name = row["name"]
        ours = per_config.loc[name] if name in per_config.index else None
        rounds = int(ours["rounds"]) if ours is not None else 0
        notes = []
        if rounds == 0:
            notes.append("no records")
        elif rounds < expected:
            notes.append(f"INCOMPLETE: {rounds} of {expected} rounds")
        protocol = _protocol_note([r for r in found.records if r["experiment"] == name])
        if protocol:
            notes.append(protocol)
        number = (lambda key: float(ours[key])) if ours is not None else (lambda key: float("nan"))
        rows.append({"configuration": label, "experiment": name, "rounds": rounds,
                     "train_pct": number("train_pct"), "train_sd": number("train_sd"),
                     "test_pct": number("test_pct"), "test_sd": number("test_sd"),
                     "report_train_pct": train, "report_train_sd": train_sd,
                     "report_test_pct": test, "report_test_sd": test_sd,
                     "n_test": int(ours["n_test"]) if ours is not None else 0,
                     "note": "; ".join(notes)})
    return pd.DataFrame(rows).set_index("configuration")


def show_table(table):
    """`report_table`'s output laid out for reading: ours and the report's side by side."""
    shown = pd.DataFrame({
        ("", "experiment"): table["experiment"],
        ("", "rounds"): table["rounds"],
        ("this project", "train %"): table["train_pct"].round(2),
        ("this project", "train SD"): table["train_sd"].round(1),
        ("this project", "test %"): table["test_pct"].round(2),
        ("this project", "test SD"): table["test_sd"].round(1),
        ("report (10 rounds)", "train %"): table["report_train_pct"],
        ("report (10 rounds)", "train SD"): table["report_train_sd"],
        ("report (10 rounds)", "test %"): table["report_test_pct"],
        ("report (10 rounds)", "test SD"): table["report_test_sd"],
        ("", "note"): table["note"],
    })
    shown.columns = pd.MultiIndex.from_tuples(shown.columns)
    return shown.fillna("-")


def cost_table(found):
    """Per configuration: parameter count and mean seconds per training, with the rounds."""
    per_config = configuration_stats(found)
    frame = found.frame
    table = pd.DataFrame({
        "description": [experiments.EXPERIMENTS[name]["description"]
                        if name in experiments.EXPERIMENTS else "" for name in per_config.index],
        "rounds": per_config["rounds"].astype(int),
        "parameters": per_config["n_parameters"],
        "seconds per training": per_config["seconds"].astype(float).round(2),
        "device": [", ".join(sorted(set(frame.loc[frame["experiment"] == name, "device"])))
                   for name in per_config.index],
    }, index=per_config.index)
    table.index.name = "experiment"
    return table


def history_frame(found):
    """One row per (experiment, seed, epoch) of the records' histories, errors in percent."""
    rows = []
    for record in found.records:
        for step in record["history"]:
            rows.append({"experiment": record["experiment"], "seed": record["seed"],
                         "epoch": step["epoch"],
                         "train_pct": 100 * step["train_errors_running"] / record["n_train"],
                         "test_pct": 100 * step["test_errors"] / record["n_test"]})
    return pd.DataFrame(rows, columns=["experiment", "seed", "epoch", "train_pct", "test_pct"])


# ---------------------------------------------------------------------------------------------
# The conclusion: every number and every comparison word is read from the tables.
# ---------------------------------------------------------------------------------------------
def _change(before, after):
    """'lowers it by 2.30 points' / 'raises it by ...' / 'leaves it unchanged'."""
    if after < before:
        return f"lowers it by {before - after:.2f} points"
    if after > before:
        return f"raises it by {after - before:.2f} points"
    return "leaves it unchanged"


def conclusion(found, expected_rounds=None):
    """A short markdown conclusion that states only what the tables show."""
    if not found.records:
        return "No run records yet, so nothing to conclude."
    tables = pd.concat([report_table(found, "III", expected_rounds),
                        report_table(found, "IV", expected_rounds)])
    rows = tables.set_index("experiment")
    have = {name for name in rows.index if rows.loc[name, "rounds"] > 0}
    test = lambda name: rows.loc[name, "test_pct"]  # noqa: E731
    published = lambda name: rows.loc[name, "report_test_pct"]  # noqa: E731
    paragraphs = []

    rounds = sorted({int(rows.loc[name, "rounds"]) for name in have})
    counted = (f"{rounds[0]} rounds" if len(rounds) == 1
               else f"{rounds[0]} to {rounds[-1]} rounds")
    intro = (f"These numbers come from {len(found.records)} run records ({counted} per "
             f"configuration; the report used 10).")
    incomplete = [name for name in rows.index if rows.loc[name, "note"].startswith(("INCOMPLETE",
                                                                                    "no records"))]
    if incomplete:
        intro += f" Incomplete or missing: {', '.join(incomplete)}."
    off_protocol = [name for name in have if "protocol" in rows.loc[name, "note"]]
    if off_protocol:
        intro += (f" The records of {', '.join(sorted(off_protocol))} were not run with the "
                  f"report's protocol, so they are not comparable with its numbers.")
    if found.damaged:
        intro += f" {len(found.damaged)} damaged record(s) were left out."
    paragraphs.append(intro)

    if {"baseline", "ws", "ws-aux"} <= have:
        b, w, a = test("baseline"), test("ws"), test("ws-aux")
        ours_helps = (w < b, a < w)
        report_helps = (published("ws") < published("baseline"),
                        published("ws-aux") < published("ws"))
        paragraphs.append(
            f"Mean test error: baseline {b:.2f}%, weight sharing {w:.2f}%, weight sharing with "
            f"the auxiliary loss of eq. (1) {a:.2f}% (the report: {published('baseline')}%, "
            f"{published('ws')}%, {published('ws-aux')}%). Weight sharing "
            f"{_change(b, w).replace('it', 'the test error')} from the baseline, and the "
            f"auxiliary loss {_change(w, a)} again; "
            + ("the direction of both steps is the report's." if ours_helps == report_helps
               else "the direction of the steps differs from the report's."))
    if {"ws-plain", "ws"} <= have:
        p, w = test("ws-plain"), test("ws")
        paragraphs.append(
            f"Batch norm and dropout take the weight-sharing network from {p:.2f}% to {w:.2f}% "
            f"test error (the report: {published('ws-plain')}% to {published('ws')}%).")
    variants = [name for name in ("ws-aux-c0.5", "ws-aux-c0.75", "ws-aux-d0.25", "ws-aux-d0.75")
                if name in have]
    if variants and "ws-aux" in have:
        best = min(variants + ["ws-aux"], key=test)
        beaten = [name for name in variants if test(name) < test("ws-aux")]
        text = (f"Of the auxiliary-loss weightings, the lowest mean test error is {best}'s "
                f"({test(best):.2f}%); eq. (1) without a discount factor (ws-aux) has "
                f"{test('ws-aux'):.2f}%. ")
        report_beaten = [name for name in variants if published(name) < published("ws-aux")]
        text += (f"{len(beaten)} of these {len(variants)} discounted weightings beat eq. (1) on "
                 f"mean test error ({', '.join(beaten) or 'none'}); in the report, "
                 f"{len(report_beaten)} did ({', '.join(report_beaten) or 'none'}).")
        paragraphs.append(text)
    sds = [100 * rows.loc[name, "test_sd"] / rows.loc[name, "n_test"] for name in have
           if pd.notna(rows.loc[name, "test_sd"])]
    if sds and len(have) > 1:
        paragraphs.append(
            f"Single rounds vary: the SD of the test error over the rounds ranges from "
            f"{min(sds):.2f} to {max(sds):.2f} percentage points across these configurations, "
            f"so differences between two means of that order need a paired test before they "
            f"are read as real.")
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------------------------
# The README's results section, written from the records (never typed): `python -m helpers
# summary` replaces the text between the two markers, and a test checks it is up to date.
# ---------------------------------------------------------------------------------------------
README_START = "<!-- results: written by `python -m helpers summary` from results/; do not edit -->"
README_END = "<!-- end of results -->"
FAR_FROM_REPORT = 5.0  # percentage points: a row this far from the report's is named


def _markdown(frame):
    """A DataFrame as a GitHub markdown table (pandas' to_markdown needs the tabulate package)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _readme_table(table):
    def cell(value, digits):
        return "-" if pd.isna(value) else f"{value:.{digits}f}"

    return _markdown(pd.DataFrame({
        "configuration": [f"`{name}`" for name in table["experiment"]],
        "rounds": table["rounds"],
        "train % (SD)": [f"{cell(p, 1)} ({cell(s, 1)})"
                         for p, s in zip(table["train_pct"], table["train_sd"])],
        "test % (SD)": [f"**{cell(p, 1)}** ({cell(s, 1)})"
                        for p, s in zip(table["test_pct"], table["test_sd"])],
        "report train % (SD)": [f"{p:g} ({s:g})" for p, s in
                                zip(table["report_train_pct"], table["report_train_sd"])],
        "report test % (SD)": [f"{p:g} ({s:g})" for p, s in
                               zip(table["report_test_pct"], table["report_test_sd"])],
    }))


def readme_results(found, expected_rounds=None):
    """The README's results section (markdown) from the records in `found`."""
    if not found.records:
        return "No run records yet: `make report` produces them."
    per_config = configuration_stats(found)
    tables = pd.concat([report_table(found, "III", expected_rounds),
                        report_table(found, "IV", expected_rounds)])
    parts = ["SD is the standard deviation of the number of test (or train) errors out of 1000, "
             "over the rounds, as in the report.",
             "", "**Table III**", "", _readme_table(report_table(found, "III", expected_rounds)),
             "", "**Table IV**", "", _readme_table(report_table(found, "IV", expected_rounds))]
    far = []
    for row in tables.itertuples():
        gaps = [f"{kind} {ours:.1f}% against {theirs:g}%"
                for kind, ours, theirs in (("train", row.train_pct, row.report_train_pct),
                                           ("test", row.test_pct, row.report_test_pct))
                if row.rounds and abs(ours - theirs) > FAR_FROM_REPORT]
        if gaps:
            far.append(f"`{row.experiment}` ({', '.join(gaps)})")
    if far:
        parts += ["", f"More than {FAR_FROM_REPORT:g} points from the report: "
                      f"{'; '.join(far)}."]
    if "best" in per_config.index:
        best = per_config.loc["best"]
        parts += ["", f"**Best model** (`best`): mean test error {best['test_pct']:.2f}% "
                      f"(SD {best['test_sd']:.1f} errors) over {int(best['rounds'])} rounds "
                      f"(seeds {best['seeds']}), {best['n_parameters']} parameters, "
                      f"{best['seconds']:.0f} s per training on one CPU thread."]
    sweep = stats.sweep_table(found.frame)
    if not sweep.empty:
        parts += ["", f"**Which alpha?** {stats.sweep_answer(sweep)}"]
    parts += ["", conclusion(found, expected_rounds)]
    return "\n".join(parts)
