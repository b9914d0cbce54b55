"""`python -m helpers COMMAND`: list the catalogue, run experiments, build the summary.

User mistakes print one line on stderr and exit with 2; no traceback.
"""

import argparse
import sys

from . import experiments
from .errors import UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        raise UsageError(f"{message} (python -m helpers --help shows the usage)")


def cmd_list(args):
    for row in experiments.CATALOGUE:
        table, label, train, train_sd, test, test_sd = row["report"] or ("", "", "", "", "", "")
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"{row['name']:<14} {row['notebook']:<22} {row['description']}")
        print(f"{'':<14} params: {params}")
        if row["report"]:
            print(f"{'':<14} report Table {table} '{label}': train {train}% (SD {train_sd}), "
                  f"test {test}% (SD {test_sd})")
    return 0


def build_parser():
    parser = _Parser(prog="python -m helpers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="print the experiment catalogue").set_defaults(func=cmd_list)
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
