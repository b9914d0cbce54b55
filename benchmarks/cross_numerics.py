"""How far a record moves when only the numerics change: the tolerance of the cross-host tests.

    MNIST_ROOT=../shared/data .venv/bin/python benchmarks/cross_numerics.py [--seeds 0-9] [--workers N]
    .venv/bin/python benchmarks/cross_numerics.py --report    # prints, trains nothing

1. Between hosts, at commit 212b2e2 (the 80 report runs, seeds 0-9): the records committed
   then (AMD EPYC, AVX-512), the same runs on this project's Intel AVX-512 machine and on an
   AMD Zen 3 AVX2 host (HOSTS: in docs/numerics/).
2. On this machine, at the current code: each committed record of results/ retrained with
   other numerics (oneDNN limited to SSE4.1 and ATen to its default kernels, set before torch
   loads), the perturbation tests/test_portability.py applies on every machine.

Prints, per configuration, the SD and the largest absolute value of the same-seed difference
in test (and train) errors, and writes part 2 as docs/numerics/cross-numerics.json, which the
tolerance test reads. `--report` prints both parts from the committed data without training
(docs/numerics.md shows that output; a test keeps the two equal). Both parts compare the same seed, so the pairs and the initialisation
are the same: what differs is only the order of float additions, amplified by training.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from helpers.catalogue import experiments  # noqa: E402
from helpers.runs.records import load  # noqa: E402
from helpers.runs.runner import parse_seeds  # noqa: E402

# Other numerics on any x86-64 machine: older vector kernels in oneDNN and ATen.
PERTURBATION = {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"}
OUTPUT = REPO / "docs" / "numerics" / "cross-numerics.json"
# The report's 80 runs at 212b2e2 on three kinds of host (error counts and prediction hashes):
# the records committed then, this project's machine, an AVX2-only host (a copy of
# ../shared/hosts/avx2-zen3-at-212b2e2.json).
HOSTS = {"AMD AVX-512": REPO / "docs/numerics/amd-avx512-at-212b2e2.json",
         "Intel AVX-512": REPO / "docs/numerics/intel-avx512-at-212b2e2.json",
         "AMD Zen 3 AVX2": REPO / "docs/numerics/amd-zen3-avx2-at-212b2e2.json"}
AVX2_HOST = HOSTS["AMD Zen 3 AVX2"]


def _prediction_hash(predictions):
    return hashlib.sha256(json.dumps(predictions).encode()).hexdigest()[:16]


def _host_file(path):
    records = json.loads(Path(path).read_text())["records"]
    return {key: (r["train_errors"], r["test_errors"], r["test_predictions_sha256"])
            for key, r in records.items()}


def _spread(differences):
    return (statistics.stdev(differences) if len(differences) > 1 else 0.0,
            max(map(abs, differences)))


def pinning():
    """Does pinning the instruction set make hosts agree, and what does it cost?"""
    unpinned = json.loads((REPO / "docs/numerics/intel-avx512-at-212b2e2.json").read_text())
    pinned = json.loads(
        (REPO / "docs/numerics/intel-avx512-pinned-avx2-at-212b2e2.json").read_text())
    print(f"0. Pinning on the Intel AVX-512 machine at 212b2e2 ({', '.join(f'{k}={v}' for k, v in pinned['pins'].items())}):")
    other = _host_file(AVX2_HOST)
    same = sum(other[k][2] == r["test_predictions_sha256"]
               for k, r in pinned["records"].items() if k in other)
    print(f"  pinned runs with the AVX2 host's predictions: {same} of {len(pinned['records'])}")
    print("  seconds per training, median of 10 seeds (two runs at once on 2 cores): "
          "unpinned / pinned")
    for name in experiments.REPORT_EXPERIMENTS:
        times = [statistics.median(r["seconds"] for k, r in data["records"].items()
                                   if k.startswith(name + "/")) for data in (unpinned, pinned)]
        print(f"  {name:<14} {times[0]:5.2f} / {times[1]:5.2f}  ({times[1] / times[0]:.2f}x)")


def between_hosts():
    hosts = {name: _host_file(path) for name, path in HOSTS.items()}
    names = list(hosts)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    print("1. Between hosts at 212b2e2: same-seed difference in test errors (SD / largest)")
    for a, b in pairs:
        common = sorted(set(hosts[a]) & set(hosts[b]))
        same = sum(hosts[a][k][2] == hosts[b][k][2] for k in common)
        print(f"  {a} vs {b}: {same} of {len(common)} runs with identical predictions")
    for name in experiments.REPORT_EXPERIMENTS:
        cells = []
        for a, b in pairs:
            diff = [hosts[a][k][1] - hosts[b][k][1] for k in sorted(hosts[a])
                    if k.startswith(name + "/") and k in hosts[b]]
            cells.append("{:5.1f} / {:3d}".format(*_spread(diff)) if diff else "-")
        print(f"  {name:<14} " + " | ".join(cells))


def _retrain(name, seed):
    code = ("import json, sys, helpers; r = helpers.train(sys.argv[1], int(sys.argv[2])); "
            "json.dump([r['train_errors'], r['test_errors'], r['numerics']], sys.stdout)")
    done = subprocess.run([sys.executable, "-c", code, name, str(seed)], cwd=REPO, check=True,
                          capture_output=True, text=True, env={**os.environ, **PERTURBATION})
    return json.loads(done.stdout)


def other_numerics(seeds, workers):
    found = load(REPO / "results")
    committed = {(r["experiment"], r["seed"]): r for r in found.records}
    print(f"2. This machine, current code: committed records vs retrained with {PERTURBATION}")
    result = {"perturbation": PERTURBATION, "seeds": seeds, "configurations": {}}
    jobs = [(name, seed) for name in experiments.REPORT_EXPERIMENTS for seed in seeds
            if (name, seed) in committed]
    with ThreadPoolExecutor(workers) as pool:  # each a fresh process of one thread
        retrained = dict(zip(jobs, pool.map(lambda job: _retrain(*job), jobs)))
    for name in experiments.REPORT_EXPERIMENTS:
        test_diff, train_diff = [], []
        for seed in seeds:
            record = committed.get((name, seed))
            if record is None:
                continue
            train, test, numerics = retrained[name, seed]
            test_diff.append(test - record["test_errors"])
            train_diff.append(train - record["train_errors"])
        if not test_diff:
            continue
        (test_sd, test_max), (train_sd, train_max) = _spread(test_diff), _spread(train_diff)
        result["configurations"][name] = {
            "test_differences": test_diff, "train_differences": train_diff,
            "test_sd": round(test_sd, 2), "test_largest": test_max,
            "train_sd": round(train_sd, 2), "train_largest": train_max}
        print(f"  {name:<14} test SD {test_sd:5.1f}, largest {test_max:3d}; "
              f"train SD {train_sd:5.1f}, largest {train_max:3d}  ({len(test_diff)} seeds)")
    result["numerics"] = numerics
    OUTPUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {OUTPUT.relative_to(REPO)}")


def pinning_cost(repeats=5, name="ws-aux", seed=0):
    """Seconds per training of `name`, unpinned and pinned, interleaved in fresh processes on
    this machine (median of `repeats` each)."""
    pins = json.loads((REPO / "docs/numerics/intel-avx512-pinned-avx2-at-212b2e2.json")
                      .read_text())["pins"]
    code = ("import json, sys, helpers; r = helpers.train(sys.argv[1], int(sys.argv[2])); "
            "print(r['seconds'])")
    times = {"unpinned": [], "pinned": []}
    for _ in range(repeats):
        for kind, extra in (("unpinned", {}), ("pinned", pins)):
            done = subprocess.run([sys.executable, "-c", code, name, str(seed)], cwd=REPO,
                                  check=True, capture_output=True, text=True,
                                  env={**os.environ, "HELPERS_PROGRESS": "0", **extra})
            times[kind].append(float(done.stdout))
    print(f"{name} seed {seed}, seconds per training in fresh processes, interleaved, median of "
          f"{repeats}: unpinned {statistics.median(times['unpinned']):.2f}, pinned "
          f"({', '.join(f'{k}={v}' for k, v in pins.items())}) "
          f"{statistics.median(times['pinned']):.2f}")


def committed_spread():
    """Part 2 as committed in docs/numerics/cross-numerics.json."""
    result = json.loads(OUTPUT.read_text())
    print(f"2. This machine, current code: committed records vs retrained with "
          f"{result['perturbation']}")
    for name, row in result["configurations"].items():
        print(f"  {name:<14} test SD {row['test_sd']:5.1f}, largest {row['test_largest']:3d}; "
              f"train SD {row['train_sd']:5.1f}, largest {row['train_largest']:3d}  "
              f"({len(row['test_differences'])} seeds)")


def report():
    pinning()
    between_hosts()
    committed_spread()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="retrainings at once (default: one per core)")
    parser.add_argument("--report", action="store_true",
                        help="print every part from the committed data (no training)")
    parser.add_argument("--cost", action="store_true",
                        help="time a training unpinned and pinned, interleaved (no record)")
    args = parser.parse_args()
    if args.report:
        report()
    elif args.cost:
        pinning_cost()
    else:
        between_hosts()
        other_numerics(parse_seeds(args.seeds), args.workers)
