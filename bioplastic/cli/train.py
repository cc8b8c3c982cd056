"""``bioplastic train``: train one network on one task and write its run file."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def add_parser(sub):
    p = sub.add_parser("train", help="train one network on one task, write DIR/run.h5",
                       description="Train a network from a model spec on a task and write the HDF5 run file.")
    p.add_argument("--model", help="spec file or name in models/ (e.g. lfrnn, lfrnn_chaotic)")
    p.add_argument("--task",
                   help="task name (see `bioplastic list tasks`; default: the spec's [task] name)")
    p.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted run from its last checkpoint "
                   "(settings come from the file; --iterations may raise the budget)")
    p.add_argument("--rule", default=None,
                   help="learning rule or composition, e.g. eprop+tcr_stp (default: the spec's [rule] name, "
                        "else bptt; see `bioplastic rules list`)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override a spec setting (repeatable), e.g. model.n_units=32, task.n_steps=40, "
                        "rule.tcr_stp.eta_s=0.05, local_training.lr=0.003, rule.name=eprop; VALUE is a TOML "
                        "value (a bare word is a string); see docs/specs.md")
    p.add_argument("--tcr", type=float, default=None, metavar="LAMBDA",
                   help="constant lambda_TCR (default: spec or 0); for local rules, the multiplier of the TCR-STP strength")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: drawn and recorded)")
    p.add_argument("--iterations", type=int, default=None, help="override the spec's iteration budget")
    p.add_argument("--checkpoint-every", type=int, default=None, help="keep parameters every K iterations")
    p.add_argument("--no-early-stop", action="store_true",
                   help="train the whole budget; the iteration the criterion was met is still recorded")
    p.add_argument("--continue-after", type=int, default=None, metavar="M",
                   help="after the sustained criterion is confirmed, train M more iterations (docs/tasks.md)")
    p.add_argument("--out", help="output folder (created); the run file is OUT/run.h5; refused if it exists "
                   "(see --resume, --overwrite) or another process is writing to OUT")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/run.h5")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args):
    """Train from ``args`` (see :func:`add_parser`); returns the exit code."""
    import contextlib
    import sys

    from ..io.lock import output_lock
    from ..io.specs import load_spec, network_from_spec, run_settings
    from ..training import resume, train

    def tell(message):
        print(f"note: {message}", file=sys.stderr, flush=True)

    if args.resume:
        if getattr(args, "overrides", None):
            raise ConfigError("--set changes a spec; a resumed run takes its settings from the run file")
        if getattr(args, "overwrite", False):
            raise ConfigError("--overwrite replaces OUT/run.h5 of a new run; a resumed run continues its file")
        # A missing file is left to resume(), whose error names it.
        with (output_lock(Path(args.resume).parent, log=tell) if Path(args.resume).is_file()
              else contextlib.nullcontext()):
            result = resume(args.resume, iterations=args.iterations,
                            progress=False if args.no_progress else None)
        print(result.summary())
        print(f"run file: {result.run_file}")
        return 0
    missing = [f"--{n}" for n in ("model", "out") if getattr(args, n) is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} required (or --resume RUN.h5)")

    overrides = list(getattr(args, "overrides", None) or [])
    spec = load_spec(args.model, overrides=overrides)
    if args.task is None and "name" not in spec["task"]:
        raise ConfigError(f"--task required (or name = \"...\" in the [task] table of {spec['path']})")
    plan = run_settings(spec, task=args.task, rule=args.rule)
    task, rule = plan["task"], plan["rule"]
    net = network_from_spec(spec, task)
    kwargs = plan["training"]
    for note in plan["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if args.tcr is not None:
        kwargs["lambda_tcr"] = args.tcr
    if args.iterations is not None:
        kwargs["iterations"] = args.iterations
    if args.checkpoint_every is not None:
        kwargs["checkpoint_every"] = args.checkpoint_every
    if args.no_early_stop:
        kwargs["early_stop"] = False
    if args.continue_after is not None:
        kwargs["continue_after"] = args.continue_after
    seed = kwargs.pop("seed", None) if args.seed is None else args.seed
    kwargs.pop("seed", None)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    run_file = out / "run.h5"
    # One writer per folder: take the lock first, then look for the run file it guards.
    with output_lock(out, log=tell):
        if run_file.exists() and not getattr(args, "overwrite", False):
            raise ConfigError(f"{str(run_file)!r} exists; use --resume {run_file} to continue it or --overwrite "
                              "to replace it")
        if plan["local"]:
            from ..training.local import train_local

            fit = lambda net, task, **kw: train_local(net, task, rule, **kw)  # noqa: E731
        else:
            fit = train
        extra = {"spec": spec["path"], "spec_overrides": spec["overrides"]}
        result = fit(net, task, seed=seed, run_file=run_file,
                     progress=False if args.no_progress else None, extra_config=extra, **kwargs)
    print(result.summary())
    print(f"run file: {result.run_file}")
    return 0
