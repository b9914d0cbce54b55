"""Seed lists ('0-9', '0,3,5', '0-2,7': a row's published seeds, or --seeds) and the rule of
the project's records folders: they take only a catalogue row's own runs."""

import re
from pathlib import Path

from ..errors import UsageError
from ..files import RESULTS, VALIDATION, relative
from .experiments import get, resolve
from .parameters import differing


def parse_seeds(text, most=10_000):
    """'0-9' | '0,3,5' | '0-2,7' -> sorted distinct seeds; UsageError if malformed, above
    torch's largest seed, or more than `most` (counted before any list is made)."""
    ranges = []
    for part in str(text).replace(" ", "").split(","):
        if not re.fullmatch(r"\d+(-\d+)?", part):
            raise UsageError(f"malformed seed list {text!r}: write seeds like 0-9, 0,3,5 or 0-2,7")
        first, _, last = part.partition("-")
        first, last = int(first), int(last or first)
        if last < first:
            raise UsageError(f"malformed seed list {text!r}: the range {part} runs backwards, "
                             f"write {last}-{first}")
        if last > 2 ** 64 - 1:
            raise UsageError(f"seed {last} is too large: seeds go from 0 to {2 ** 64 - 1} "
                             f"(2**64 - 1)")
        ranges.append((first, last))
    count, reached = 0, -1  # distinct seeds of the sorted, possibly overlapping ranges
    for first, last in sorted(ranges):
        count, reached = count + max(0, last - max(first, reached + 1) + 1), max(reached, last)
    if count > most:
        raise UsageError(f"--seeds {text} asks for {count:,} runs of each experiment: at most "
                         f"{most:,} in one batch; run the seeds in parts")
    return sorted({seed for first, last in ranges for seed in range(first, last + 1)})


def seed_list(seeds):
    """[0, 1, 2, 5] -> '0-2,5'."""
    runs = []
    for seed in sorted(seeds):
        if runs and seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def check_own_run(params, folder, fix):
    """UsageError unless a record of `params` may go into `folder`: the project's records
    folders, which the publication reads, take only a row's own runs (its parameters, one of
    its seeds), each in its row's folder. `fix` ends the message."""
    if Path(folder).resolve() not in (RESULTS.resolve(), VALIDATION.resolve()):
        return
    name, seed = params["experiment"], params["seed"]
    own = resolve(name, seed=seed)
    problems = [f"{key} {params.get(key)!r}, not {own[key]!r}" for key in differing(params, own)]
    if seed not in parse_seeds(get(name)["seeds"]):
        problems.append(f"seed {seed} outside its seeds {get(name)['seeds']}")
    home = VALIDATION if own["evaluate_on"] == "validation" else RESULTS
    if Path(folder).resolve() != home.resolve():
        problems.append(f"its records go in {home.name}/")
    if problems:
        raise UsageError(f"{name} seed {seed} is not catalogue row {name}'s own run "
                         f"({'; '.join(problems[:3])}): {relative(folder)}/ holds only the "
                         f"catalogue's rows at their seeds; {fix}")
