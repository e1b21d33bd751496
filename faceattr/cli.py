"""``faceattr`` command line: the one place that wires every stage together.

Exit codes: 0 ok; 1 a claim or the model gate failed; 2 a user input error (one line naming
the thing and the fix); 3 an internal error in faceattr (traceback kept: please report it);
``faceattr compare`` also exits 4 when equivalence cannot be shown for lack of pairs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from faceattr.errors import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    GateFailedError,
    InputError,
)

if TYPE_CHECKING:
    from faceattr.experiments.executor import Executor
    from faceattr.protocol import Protocol

__all__ = ["main"]


def _cmd_run(args: argparse.Namespace) -> int:
    from faceattr.experiments.run import Shard, run_protocol
    from faceattr.protocol import load_protocol

    shard = Shard.parse(args.shard) if args.shard else None
    protocol = _on_device(load_protocol(Path(args.protocol)), args)
    with _executor(args) as executor:
        folder = run_protocol(protocol, Path(args.reports_dir), threads=args.threads,
                              progress=not args.quiet, shard=shard,
                              force_rerun=args.force_rerun, executor=executor)
    print(folder.root)
    return 0


def _on_device(protocol: Protocol, args: argparse.Namespace) -> Protocol:
    from faceattr.experiments.executor import protocol_on_device

    return protocol_on_device(protocol, args.device)


@contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Executor]:
    """``--executor serial`` (the in-process loop) or ``dask`` (``--scheduler`` or a
    LocalCluster of one single-threaded worker per core), closed after the run."""
    from faceattr.experiments.executor import DaskExecutor, SerialExecutor

    if args.executor == "serial":
        if args.scheduler is not None:
            raise InputError("--scheduler needs --executor dask")
        yield SerialExecutor()
        return
    with DaskExecutor(scheduler=args.scheduler) as executor:
        yield executor


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from faceattr.calibration.calibrate import (
        calibrate_file,
        declared_separations,
        separation_lines,
        summary_lines,
    )
    from faceattr.protocol import load_protocol

    path = Path(args.protocol)
    calibration = calibrate_file(path, progress=not args.quiet)
    protocol = load_protocol(path)
    print("\n".join([f"{path}: [calibration.result] written ({calibration.wall_s:.1f} s)",
                      *summary_lines(calibration, protocol.alpha),
                      *separation_lines(calibration, declared_separations(protocol),
                                        protocol.alpha)]))
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from faceattr.experiments.shards import merge_shards
    from faceattr.protocol import load_protocol

    folder = merge_shards(_on_device(load_protocol(Path(args.protocol)), args),
                          Path(args.reports_dir), count=args.shards, threads=args.threads)
    print(folder.root)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from faceattr.compare import compare_main

    code, text = compare_main(Path(args.baseline), Path(args.candidate), margin=args.margin,
                              alpha=args.alpha, format=args.format)
    print(text, end="")
    return code


def _cmd_fetch_demo(args: argparse.Namespace) -> int:
    del args
    from faceattr.fetch import fetch_demo

    assets = fetch_demo()
    print(f"dlib weights: {assets.dlib_weights}\ndemo photos: {assets.photos_dir}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from faceattr.experiments.plan import plan_run
    from faceattr.protocol import load_protocol

    print(plan_run(_on_device(load_protocol(Path(args.protocol)), args)).render())
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from faceattr.experiments.run import resolve_run_folder
    from faceattr.io import read_json, read_jsonl
    from faceattr.protocol import load_protocol

    protocol = _on_device(load_protocol(Path(args.protocol)), args)
    folder = resolve_run_folder(protocol, Path(args.reports_dir))
    n_lines = len(read_jsonl(folder.records)) if folder.records.exists() else 0
    n_pairs = read_json(folder.manifest)["n_pairs"] if folder.manifest.exists() else "?"
    expected = f"{n_pairs} pairs x {len(protocol.methods)} methods"
    state = "complete" if folder.summary.exists() else (
        "not started" if n_lines == 0 else "partial (resumable)")
    print(f"{folder.root}: {state}; {n_lines} records of {expected}")
    if folder.claims.exists():
        claims = read_json(folder.claims)
        print(f"claims: {claims['n_passed']}/{claims['n_declared']} passed; gate "
              f"{'PASSED' if claims['gate_passed'] else 'FAILED'}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from faceattr.scaffold import init_protocol

    out = init_protocol(Path(args.out), model=Path(args.model), data=Path(args.data),
                        input_size_px=args.input_size_px, embedding_dim=args.embedding_dim,
                        n_pairs=args.n_pairs)
    print(f"{out}: written; check it with `faceattr plan {out}`, then `faceattr validate {out}`")
    return 0


def _cmd_protocol_reference(args: argparse.Namespace) -> int:
    del args
    from faceattr.reference import protocol_reference

    print(protocol_reference(), end="")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from faceattr.report import render_report

    print(render_report(Path(args.run_dir)))
    return 0


#: pytest's exit codes -> faceattr's: tests failed -> a claim failed; usage error or no
#: tests collected -> input error; interrupted or internal error -> internal error.
_PYTEST_EXIT = {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERNAL, 3: EXIT_INTERNAL, 4: EXIT_INPUT,
                5: EXIT_INPUT}


def _validate_command(args: argparse.Namespace) -> list[str]:
    """pytest on this checkout's suite (``validation/``), or on the installed gate."""
    base = [sys.executable, "-m", "pytest"]
    if args.suite is not None or (Path("validation") / "conftest.py").exists():
        suite = Path(args.suite or "validation")
        if not (suite / "conftest.py").exists():
            raise InputError(f"{suite}: no validation suite here (no conftest.py); omit "
                             "--suite to use the installed gate")
        command = [*base, str(suite)]
    else:
        if not args.protocol:
            raise InputError("faceattr validate: name the protocol(s) to check, e.g. "
                             "`faceattr validate my_study.toml`")
        command = [*base, "--pyargs", "faceattr.gate.checks", "-p", "faceattr.gate.plugin",
                   "--rootdir", str(Path.cwd())]
    command += ["-p", "no:cacheprovider", "--reports-dir", args.reports_dir, "--threads",
                str(args.threads), "-q" if args.quiet else "-v"]
    if args.force_rerun:
        command.append("--force-rerun")
    if args.device is not None:
        command += ["--device", args.device]
    for protocol in args.protocol:
        command += ["--protocol", protocol]
    return command


def _cmd_validate(args: argparse.Namespace) -> int:
    return _PYTEST_EXIT.get(subprocess.call(_validate_command(args)), EXIT_INTERNAL)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceattr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--reports-dir", default="reports", help="run folders (default reports)")
    common.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; set it deliberately)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    on_device = argparse.ArgumentParser(add_help=False)
    on_device.add_argument("--device", default=None, metavar="DEVICE",
                           help="cpu, cuda, cuda:N or mps (default: the protocol's [execution] "
                                "device, cpu when it names none); part of the run's identity")
    run = sub.add_parser("run", parents=[common, on_device],
                         help="run a protocol into a run folder")
    run.add_argument("protocol", help="protocol TOML")
    run.add_argument("--shard", metavar="I/N", help="run only shard I of N (pairs I::N)")
    run.add_argument("--force-rerun", action="store_true",
                     help="discard the run folder's contents and run again")
    run.add_argument("--executor", choices=["serial", "dask"], default="serial",
                     help="who computes the (pair batch x method) tasks: this process "
                          "(serial, default) or a Dask cluster; the records are identical")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="with --executor dask: the scheduler (e.g. tcp://host:8786); "
                          "default a LocalCluster of one worker process per core")
    run.set_defaults(func=_cmd_run)
    calibrate = sub.add_parser("calibrate", parents=[common],
                               help="derive Theorem 3.5's thresholds for the protocol's model on "
                                    "its calibration split and write them into the protocol")
    calibrate.add_argument("protocol", help="protocol TOML (rewritten: [calibration.result])")
    calibrate.set_defaults(func=_cmd_calibrate)
    merge = sub.add_parser("merge", parents=[common, on_device],
                           help="merge the N shards of a run")
    merge.add_argument("protocol", help="protocol TOML")
    merge.add_argument("--shards", type=int, required=True, metavar="N", help="shard count")
    merge.set_defaults(func=_cmd_merge)
    plan = sub.add_parser("plan", parents=[common, on_device],
                          help="the work a protocol implies and its expected time")
    plan.add_argument("protocol", help="protocol TOML")
    plan.set_defaults(func=_cmd_plan)
    compare = sub.add_parser("compare", help="compare two runs (or legacy results files): "
                             "exit 0 equivalent, 1 regression, 2 not comparable, 4 inconclusive")
    compare.add_argument("baseline", help="run folder or legacy results JSON (A)")
    compare.add_argument("candidate", help="run folder or legacy results JSON (B)")
    compare.add_argument("--margin", type=float, default=0.05,
                         help="equivalence margin for FR differences, a fraction (default 0.05)")
    compare.add_argument("--alpha", type=float, default=0.05, help="test level (default 0.05)")
    compare.add_argument("--format", choices=["text", "json"], default="text")
    compare.set_defaults(func=_cmd_compare)
    fetch = sub.add_parser("fetch-demo", help="download (sha256-verified) dlib's ResNet weights "
                           "and the demo photos into the cache")
    fetch.set_defaults(func=_cmd_fetch_demo)
    status = sub.add_parser("status", parents=[common, on_device],
                            help="progress of a protocol's run")
    status.add_argument("protocol", help="protocol TOML")
    status.set_defaults(func=_cmd_status)
    report = sub.add_parser("report", help="render report.html from a run folder")
    report.add_argument("run_dir")
    report.set_defaults(func=_cmd_report)
    init = sub.add_parser("init", help="write a commented protocol for your model and data")
    init.add_argument("--model", required=True, help="model file (.onnx, TorchScript .pt)")
    init.add_argument("--data", required=True, help="data folder (pairs.csv, pairs.txt or one "
                                                     "folder per identity)")
    init.add_argument("--out", default="protocol.toml", help="protocol to write")
    init.add_argument("--input-size-px", type=int, default=112, help="network input (112)")
    init.add_argument("--embedding-dim", type=int, default=512, help="embedding size (512)")
    init.add_argument("--n-pairs", type=int, default=100, help="pairs to use (100; 0 = all)")
    init.set_defaults(func=_cmd_init)
    reference = sub.add_parser("protocol-reference",
                               help="every protocol key with type, default, unit, allowed values")
    reference.set_defaults(func=_cmd_protocol_reference)
    validate = sub.add_parser("validate", parents=[common, on_device],
                              help="run protocols and check their claims (the gate)")
    validate.add_argument("protocol", nargs="*", help="protocol TOMLs (default: the suite's)")
    validate.add_argument("--suite", default=None,
                          help="a validation suite folder (default: ./validation when it has a "
                               "conftest.py, else the installed gate)")
    validate.add_argument("--force-rerun", action="store_true",
                          help="discard the protocols' run folders and run them again")
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    if hasattr(args, "threads"):
        torch.set_num_threads(args.threads)
    try:
        code: int = args.func(args)
    except GateFailedError as exc:
        print(f"faceattr: gate failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except InputError as exc:
        print(f"faceattr: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:  # the environment (disk full, permissions), not faceattr's logic
        print(f"faceattr: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception:  # noqa: BLE001 — a bug in faceattr: keep the traceback, exit 3
        traceback.print_exc()
        print("faceattr: internal error (a bug in faceattr, not in your input): please report "
              "it with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    raise SystemExit(main())
