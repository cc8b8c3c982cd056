"""``bioplastic train``: train one network on one task and write its run file."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def add_parser(sub):
    p = sub.add_parser("train", help="train one network on one task, write DIR/run.h5",
                       description="Train a network from a model spec on a task and write the HDF5 run file.")
    p.add_argument("--model", help="spec file or name in models/ (e.g. lfrnn, lfrnn_chaotic)")
    p.add_argument("--task", help="task name (see `bioplastic list tasks`)")
    p.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted run from its last checkpoint "
                   "(settings come from the file; --iterations may raise the budget)")
    p.add_argument("--rule", default="bptt",
                   help="learning rule or composition, e.g. eprop+tcr_stp (default bptt; see `bioplastic rules list`)")
    p.add_argument("--tcr", type=float, default=None, metavar="LAMBDA",
                   help="constant lambda_TCR (default: spec or 0); for local rules, the multiplier of the TCR-STP strength")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: drawn and recorded)")
    p.add_argument("--iterations", type=int, default=None, help="override the spec's iteration budget")
    p.add_argument("--checkpoint-every", type=int, default=None, help="keep parameters every K iterations")
    p.add_argument("--no-early-stop", action="store_true",
                   help="train the whole budget; the iteration the criterion was met is still recorded")
    p.add_argument("--continue-after", type=int, default=None, metavar="M",
                   help="after the sustained criterion is confirmed, train M more iterations (docs/tasks.md)")
    p.add_argument("--out", help="output folder (created); the run file is OUT/run.h5")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args):
    from ..io.specs import load_spec, network_from_spec
    from ..tasks import get_task
    from ..training import resume, train

    if args.resume:
        result = resume(args.resume, iterations=args.iterations, progress=False if args.no_progress else None)
        print(result.summary())
        print(f"run file: {result.run_file}")
        return 0
    missing = [f"--{n}" for n in ("model", "task", "out") if getattr(args, n) is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} required (or --resume RUN.h5)")

    from ..rules import get_rule

    rule = get_rule(args.rule)
    spec = load_spec(args.model)
    task = get_task(args.task)
    net = network_from_spec(spec, task)
    kwargs = dict(spec["training"])
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
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    if rule.name == "bptt":
        fit = train
    else:
        from ..training.local import local_kwargs, train_local

        kwargs = local_kwargs(kwargs)
        fit = lambda net, task, **kw: train_local(net, task, rule, **kw)  # noqa: E731
    result = fit(net, task, seed=args.seed, run_file=out / "run.h5",
                 progress=False if args.no_progress else None,
                 extra_config={"spec": spec["path"]}, **kwargs)
    print(result.summary())
    print(f"run file: {result.run_file}")
    return 0
