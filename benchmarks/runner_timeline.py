"""Where the notebook runner's time goes, run by run: a profile, not a test.

    python benchmarks/runner_timeline.py [EXPERIMENT] [SEEDS] [WORKERS]   (default ws-aux 0-9 2)

Runs `python -m helpers run EXPERIMENT --seeds SEEDS --workers WORKERS` into a temporary
folder and prints, from papermill's timestamps in each executed notebook, seconds since the
command started: when papermill began the run, when its first cell started, when the last
cell ended, and the time of its cells by kind (the training cell, the learning-curve figure,
the rest), beside the record's own `seconds` (the training). What the training does not
explain is the runner's: start-up before the first cell, gaps between runs, figure and
notebook cells, and the end.
"""

import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def _stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cell_kind(source):
    if "run_experiment(params)" in source:
        return "train"
    if "plot_learning_curves" in source:
        return "figure"
    return "other"


def timeline(runs_dir, results_dir, started):
    rows = []
    for path in Path(runs_dir).glob("*/seed-*.ipynb"):
        notebook = json.loads(path.read_text())
        cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
        kinds = {}
        for cell in cells:
            kind = cell_kind("".join(cell["source"]))
            kinds[kind] = kinds.get(kind, 0.0) + (cell["metadata"]["papermill"]["duration"] or 0)
        record = json.loads((Path(results_dir) / path.parent.name / f"{path.stem}.json").read_text())
        rows.append({
            "run": f"{path.parent.name} {path.stem}",
            "papermill": _stamp(notebook["metadata"]["papermill"]["start_time"]) - started,
            "first_cell": _stamp(cells[0]["metadata"]["papermill"]["start_time"]) - started,
            "last_cell": _stamp(cells[-1]["metadata"]["papermill"]["end_time"]) - started,
            "training": record["seconds"], **kinds})
    return sorted(rows, key=lambda row: row["papermill"])


def main(experiment="ws-aux", seeds="0-9", workers="2"):
    with tempfile.TemporaryDirectory() as folder:
        results, runs = Path(folder) / "results", Path(folder) / "runs"
        started = time.time()
        done = subprocess.run([sys.executable, "-m", "helpers", "run", experiment, "--seeds",
                               seeds, "--workers", workers, "--results", str(results), "--runs",
                               str(runs)], capture_output=True, text=True)
        wall = time.time() - started
        if done.returncode != 0:
            sys.exit(f"the runner failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
        rows = timeline(runs, results, started)
    print(f"{'run':<18} {'papermill':>9} {'1st cell':>8} {'last end':>8} {'train cell':>10} "
          f"{'training':>8} {'figure':>6} {'other':>6}")
    for row in rows:
        print(f"{row['run']:<18} {row['papermill']:>9.2f} {row['first_cell']:>8.2f} "
              f"{row['last_cell']:>8.2f} {row.get('train', 0):>10.2f} {row['training']:>8.2f} "
              f"{row.get('figure', 0):>6.2f} {row.get('other', 0):>6.2f}")
    print(f"command: {wall:.2f} s wall; first cell at {rows[0]['first_cell']:.2f} s; "
          f"last cell ended at {max(row['last_cell'] for row in rows):.2f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
