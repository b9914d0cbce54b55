"""`python -m helpers COMMAND`: list the catalogue, run experiments, build the summary.

User mistakes print one line on stderr and exit with 2; no traceback.
"""

import argparse
import errno
import os
import shlex
import signal
import sys
import textwrap

from . import __version__
from .catalogue import experiments
from .catalogue.parameters import PARAMETERS, reads
from .errors import UsageError


# The notebooks that train (those of the catalogue's rows), in catalogue order.
ARCHITECTURE_NOTEBOOKS = list(dict.fromkeys(row["notebook"] for row in experiments.CATALOGUE))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        raise UsageError(f"{message} (python -m helpers --help shows the usage)")


def cmd_list(args):
    if args.names == ["parameters"]:
        print("run parameters (-p NAME VALUE, or a notebook's parameters cell), with their "
              "defaults (the report's protocol and network):")
        for name, parameter in PARAMETERS.items():
            print(f"  {name:<18} {str(parameter.default):<15} {parameter.help}")
        return 0
    if not args.names:
        print("groups (python -m helpers list GROUP shows its rows; run GROUP runs them):")
        for group in experiments.GROUPS:
            rows = [row for row in experiments.CATALOGUE if group in row["group"]]
            names = [row["name"] for row in rows]
            shown = " ".join(names[:3]) + (f" ... ({len(names) - 3} more)" if len(names) > 3 else "")
            seeds = ",".join(dict.fromkeys(row["seeds"] for row in rows))
            folder = "validation/" if rows[0]["params"].get("evaluate_on") == "validation" \
                else "results/"
            print(f"  {group:<10} {len(rows):>3} row{'s' * (len(rows) > 1)}, seeds {seeds:<8} "
                  f"into {folder:<12} {shown}")
        print("  all        every row measured on the test pairs (report, sweep, best)")
        print("run parameters and their defaults: python -m helpers list parameters")
        return 0
    names = set(experiments.expand(args.names))
    for row in experiments.CATALOGUE:
        if row["name"] not in names:
            continue
        params = experiments.resolve(row["name"])  # as it runs: the parameters it reads
        runs = " ".join(f"{name}={params[name]}" for name in reads(params))
        print(f"{row['name']:<14} {row['notebook']:<22} {row['description']}")
        print(textwrap.fill(f"seeds {row['seeds']}; runs {runs}", 100, initial_indent=" " * 15,
                            subsequent_indent=" " * 15))
        if row["report"]:
            table, label, train, train_sd, test, test_sd = row["report"]
            print(f"{'':<14} report Table {table} '{label}': train {train}% (SD {train_sd}), "
                  f"test {test}% (SD {test_sd})")
    return 0


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def overrides(args):
    """The -p NAME VALUE pairs given -> {name: value}: each once, none naming the runs."""
    given = {}
    for name, value in args.p or []:
        if name in given:
            raise UsageError(f"-p {name} is given twice: give each parameter once")
        if name in ("experiment", "seed"):
            raise UsageError(f"-p {name} is not allowed here: run names experiments as "
                             f"arguments and seeds with --seeds, bench with --experiments and "
                             f"--seeds; summary takes each row's seeds")
        given[name] = value
    return given


def cmd_run(args):
    from .catalogue.seeds import seed_list
    from .files import relative
    from .runs import runner

    overrides_ = overrides(args)
    if args.scheduler is not None and not args.scheduler.strip():  # not "run locally"
        raise UsageError("--scheduler is empty: give the Dask scheduler's address, e.g. "
                         "--scheduler tcp://host:8786, or leave the option out to run here")
    for option, folder in (("--results", args.results), ("--runs", args.runs)):
        if folder is not None and not folder.strip():  # the current folder: never what was meant
            raise UsageError(f"{option} is empty: name a folder, e.g. {option} "
                             f"{option[2:]}")
    # what a rerun of a part of this batch needs besides the experiments, --seeds and --force
    rerun = [*(["--workers", str(args.workers)] if args.workers else []),
             *(["--results", args.results] if args.results else []),
             *(["--runs", args.runs] if args.runs else []),
             *[word for name, value in args.p or [] for word in ("-p", name, value)],
             *(["--scheduler", args.scheduler] if args.scheduler else []),
             *(["--notebooks", args.notebooks] if args.notebooks else [])]
    out = sys.stderr
    batch = runner.run_batch(
        args.experiments, seeds=args.seeds, workers=args.workers, results_dir=args.results,
        runs_dir=args.runs or runner.RUNS, force=args.force, overrides=overrides_,
        notebooks_dir=args.notebooks, scheduler=args.scheduler, stream=out)
    parts = [f"{len(batch.done)} done" + f" ({len(batch.diverged)} diverged)" * bool(
        batch.diverged)] + [f"{len(jobs)} {what}" for jobs, what in (
        (batch.skipped, "skipped (record already there)"), (batch.failed, "failed"),
        (batch.not_done, "not done")) if jobs]
    out.write(f"{batch.total} run{'s' * (batch.total != 1)}: {', '.join(parts)}\n")
    for job, message in batch.failed:
        where = f"  (executed notebook: {relative(job.output)})" if job.output.is_file() else ""
        out.write(f"  failed: {job.name}: {message}{where}\n")
    if batch.usage_error:
        out.write(f"stopped: {batch.usage_error}\n")
    elif batch.not_done:
        command = "python -m helpers " + shlex.join(args.argv)
        if args.force:  # the same command would redo the runs done meanwhile
            seeds = {}
            for job in batch.not_done:
                seeds.setdefault(job.experiment, []).append(job.seed)
            command = "; ".join(shlex.join(["python", "-m", "helpers", "run", name, "--seeds",
                                            seed_list(s), *rerun, "--force"])
                                for name, s in seeds.items())
        why = (f"interrupted by {signal.Signals(batch.interrupted_by).name}"
               if batch.interrupted_by else "not done")
        out.write(f"{why}: finished records are kept; run {'this' if args.force else 'the same'}"
                  f" command again to do the {len(batch.not_done)} missing runs: {command}\n")
    return batch.exit_code


def cmd_notebooks(args):
    from .publish.summary import refresh_notebooks

    unknown = [name for name in args.names if name not in ARCHITECTURE_NOTEBOOKS]
    if unknown:
        raise UsageError(f"no notebook {', '.join(unknown)} among the architecture notebooks: "
                         f"choose among {', '.join(ARCHITECTURE_NOTEBOOKS)}")
    return refresh_notebooks(args.names or ARCHITECTURE_NOTEBOOKS, notebooks_dir=args.notebooks)


def cmd_summary(args):
    from .publish import summary

    return summary.summary(results_dir=args.results or summary.RESULTS, output=args.output,
                           validation_dir=args.validation, notebooks_dir=args.notebooks,
                           overrides=overrides(args))


def cmd_bench(args):
    from . import bench
    from .catalogue.seeds import parse_seeds

    given = overrides(args)
    if "threads" in given:
        raise UsageError("-p threads is the benchmark's to set (it times each thread layout): "
                         "leave it out")
    if args.quick:  # a smoke run of every part: tiny trainings, two seeds, one repeat
        given = {"epochs": 1, "n_pairs": 100, **given}
    names = [name.strip() for name in args.experiments.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--experiments {args.experiments!r} names no configuration: give "
                         f"them comma-separated, e.g. --experiments baseline,ws")
    for name in names:
        experiments.resolve(name, **given)  # unknown names and bad values: one line, exit 2
    seeds = parse_seeds(args.seeds or ("0-1" if args.quick else "0-9"))
    repeats = args.repeats or (1 if args.quick else 3)
    bench.bench(names, repeats=repeats, overrides=given, runner_seeds=seeds,
                runner=False if args.no_runner else (True if args.quick else "all"),
                report=args.report)
    return 0


def build_parser():
    parser = _Parser(prog="python -m helpers", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = commands.add_parser(
        "list", help="print the experiment catalogue's groups, their rows, the run parameters",
        description="Print the groups of the catalogue, one line each; with names (rows, "
                    "groups, or all), those rows: notebook, seeds, parameters, the report's "
                    "numbers; with `parameters`, every run parameter with its default.")
    listing.add_argument("names", nargs="*", metavar="NAME",
                         help="rows or groups to show, or `parameters` (default: the groups)")
    listing.set_defaults(func=cmd_list)

    run = commands.add_parser(
        "run", help="execute experiment notebooks once per seed (skips runs already recorded)",
        description="Execute each experiment's notebook with papermill once per seed, in "
                    "parallel workers. Runs whose record exists are skipped: after an "
                    "interruption, the same command does only what is missing. The project's "
                    "results/ and validation/ take only the catalogue's own runs (its "
                    "parameters and seeds); others go elsewhere with --results. Exit codes: "
                    "0 all done, 1 some runs failed or not done, 2 usage error, 130 Ctrl-C, "
                    "143 SIGTERM, 129 SIGHUP. docs/running.md says what it guarantees.")
    run.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                     help=f"catalogue rows or groups ({', '.join(experiments.GROUPS)}), or all "
                          f"(every row measured on the test pairs); python -m helpers list")
    run.add_argument("--seeds", default=None,
                     help="rounds, e.g. 0-9, 0,3,5 or 0-2,7 (default: each row's own seeds)")
    run.add_argument("--workers", type=positive_int, default=None,
                     help="parallel runs (default: the number of CPU cores)")
    run.add_argument("--results", default=None,
                     help="records folder (default: each row's, results/ or validation/)")
    run.add_argument("--runs", default=None,
                     help="executed notebooks, their logs and records (default runs/)")
    run.add_argument("--force", action="store_true", help="redo runs that have a record")
    run.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="override a run parameter for every run, e.g. -p epochs 10")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run on this Dask cluster (e.g. tcp://host:8786) instead of local "
                          "processes; --workers defaults to its worker threads")
    run.add_argument("--notebooks", default=None, help=argparse.SUPPRESS)  # tests: a copy
    run.set_defaults(func=cmd_run)

    notebooks = commands.add_parser(
        "notebooks", help="execute the architecture notebooks in place with their defaults",
        description="Execute baseline, weight_sharing, auxiliary_loss and best.ipynb (or those "
                    "named) in place with their own defaults: one round, seed 0, nothing "
                    "written. Their outputs are what nbval compares in make test; run this "
                    "after changing the code they show or run.")
    notebooks.add_argument("names", nargs="*", metavar="NOTEBOOK",
                           help="e.g. baseline.ipynb (default: the four)")
    notebooks.add_argument("--notebooks", default=None, help=argparse.SUPPRESS)  # tests: a copy
    notebooks.set_defaults(func=cmd_notebooks)

    summary = commands.add_parser(
        "summary", help="publish the records: the report's notebooks executed, their HTML, the "
                        "figures, the README's results",
        description="Execute the report's notebooks (summary, analysis, readings, searches) over "
                    "the records of --results and --validation (never training), export each to "
                    "HTML without its code (report.html, ...) and keep their figures. A record "
                    "counts only when it is its catalogue row's "
                    "(the row's parameters, one of its seeds); the others are named and left "
                    "out. Over the project's results/, the notebooks are replaced in place, "
                    "the figures go to figures/, the HTML to the project's root and README.md's "
                    "results section is rewritten; over another folder F, everything goes to "
                    "F-report/ (or --output) and no project file changes. Outputs are replaced "
                    "only once all are made. Exit codes: 0 done, 1 a notebook failed, 2 usage "
                    "error, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (nothing replaced).")
    summary.add_argument("--results", default=None,
                         help="records folder (default: the project's results)")
    summary.add_argument("--validation", default=None, metavar="FOLDER",
                         help="records on validation pairs (default the project's validation)")
    summary.add_argument("--output", default=None, metavar="FOLDER",
                         help="put every output in FOLDER (default: the project's places for "
                              "results/, else RESULTS-report/ beside the results folder)")
    summary.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"),
                         help="count records made with this run parameter (as run -p made "
                              "them), e.g. -p epochs 10")
    summary.add_argument("--notebooks", default=None, help=argparse.SUPPRESS)  # tests: a copy
    summary.set_defaults(func=cmd_summary)

    bench = commands.add_parser(
        "bench", help="time trainings and the runner on this machine (prints figures)",
        description="Print seconds per training, FLOPs, GFLOP/s and efficiency against this "
                    "machine's matmul rate per configuration, runs per minute per thread "
                    "layout, and the notebook runner's overhead; medians over --repeats.")
    bench.add_argument("--experiments", default=",".join(("baseline", "ws-plain", "ws", "ws-aux")),
                       help="comma-separated configurations (default baseline,ws-plain,ws,ws-aux)")
    bench.add_argument("--repeats", type=positive_int, default=None,
                       help="timings per configuration, the median is printed (default 3)")
    bench.add_argument("--seeds", default=None,
                       help="runs of ws-aux for throughput and runner overhead (default 0-9)")
    bench.add_argument("--quick", action="store_true",
                       help="a smoke run: 1 epoch, 100 pairs, 1 repeat, seeds 0-1, the "
                            "runner timed at one layout")
    bench.add_argument("--no-runner", action="store_true",
                       help="skip the timing of python -m helpers run")
    bench.add_argument("--report", action="store_true",
                       help="also time make report from scratch (the eight configurations "
                            "for --seeds, then the summary) into temporary folders")
    bench.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="override a run parameter, e.g. -p epochs 5")
    bench.set_defaults(func=cmd_bench)
    return parser


def _open_streams():
    """/dev/null for stdin, stdout or stderr where the caller closed them (`2>&-`): no file
    opened later takes their numbers. Writes to stderr never fail."""
    from .files import Output

    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # (the lowest free number: this one)
            setattr(sys, name, open(null, "r" if fd == 0 else "w", encoding="utf-8"))
    sys.stderr = Output(sys.stderr)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    stderr = sys.stderr
    try:
        _open_streams()
        args = build_parser().parse_args(argv)
        args.argv = argv
        code = args.func(args)
        sys.stdout.flush()  # here, where a reader gone is caught, not at exit
        return code
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # Ctrl-C before the runner took over the signals
        print("interrupted: nothing was lost; run the same command again", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (`... | head -1`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 128 + signal.SIGPIPE
    except OSError as error:  # a path given that is too long for the system
        if error.errno != errno.ENAMETOOLONG:
            raise
        print(f"error: a name in {error.filename or 'a path given'} is too long "
              f"({error.strerror}): choose a shorter one", file=sys.stderr)
        return UsageError.exit_code
    finally:
        sys.stderr = stderr if stderr is not None else sys.stderr
