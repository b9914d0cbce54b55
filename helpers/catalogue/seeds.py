"""Seed lists: '0-9', '0,3,5', '0-2,7' (a row's published seeds, or --seeds)."""

import re

from ..errors import UsageError


def parse_seeds(text, most=10_000):
    """'0-9' | '0,3,5' | '0-2,7' -> sorted distinct seeds; UsageError if malformed, above
    torch's largest seed, or more than `most` (counted before any list is made)."""
    ranges = []
    for part in str(text).replace(" ", "").split(","):
        if not re.fullmatch(r"\d{1,30}(-\d{1,30})?", part):
            raise UsageError(f"malformed seed list {text!r}: write seeds like 0-9, 0,3,5 or 0-2,7")
        first, _, last = part.partition("-")
        first, last = int(first), int(last or first)
        if last < first:
            raise UsageError(f"malformed seed list {text!r}: the range {part} runs backwards, "
                             f"write {last}-{first}")
        if last > 2 ** 64 - 1:
            raise UsageError(f"seed {last} is too large: the largest is {2**64 - 1} (2**64 - 1)")
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
