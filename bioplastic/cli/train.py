"""``bioplastic train``: train one network on one task and write its run file."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..preflight import check_model_settings, check_out_folder, check_run_seed
from ..training.checks import check_training


def add_parser(sub):
    p = sub.add_parser("train", help="train one network on one task, write DIR/run.h5",
                       description="Train a network from a model spec on a task and write the HDF5 run file.")
    p.add_argument("--model", help="spec file, or a name in models/ or models/examples/ (e.g. lfrnn, "
                                    "lfrnn_chaotic, quickstart; see `bioplastic list specs`)")
    p.add_argument("--task",
                   help="task name (see `bioplastic list tasks`; default: the spec's [task] name)")
    p.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted run from its last checkpoint "
                   "(settings come from the file; --iterations may raise the budget)")
    p.add_argument("--rule", default=None,
                   help="learning rule or composition, e.g. eprop+tcr_stp (default: the spec's [rule] name, "
                        "else bptt; see `bioplastic rules list`)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override a spec setting (repeatable), e.g. model.n_units=32, task.n_steps=40, "
                        "rule.tcr_stp.eta_s=0.05, local_training.lr=0.003, rule.name=eprop, "
                        "training.lambda_tcr.value=0.5, record.n_trials=4, nwb.lab=X; VALUE is a TOML "
                        "value (a bare word is a string); see docs/specs.md")
    p.add_argument("--record", nargs="?", const="", default=None, metavar="WHAT",
                   help="record activity of a fixed batch of trials at every checkpoint: bare for "
                        "the defaults (states, rates, outputs; 16 trials), or a comma-separated list, e.g. "
                        "--record rates,states,inputs; the same as a [record] table (docs/specs.md), whose "
                        "other keys it keeps")
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
    import warnings

    from ..io.lock import output_lock
    from ..io.specs import load_spec, network_from_spec, run_settings
    from ..training import resume, train

    def tell(message):
        print(f"note: {message}", file=sys.stderr, flush=True)

    if args.resume:
        if getattr(args, "overrides", None):
            raise ConfigError("--set changes a spec; a resumed run takes its settings from the run file")
        if getattr(args, "record", None) is not None:
            raise ConfigError("--record changes what a run records; a resumed run records what it started with")
        if getattr(args, "overwrite", False):
            raise ConfigError("--overwrite replaces OUT/run.h5 of a new run; a resumed run continues its file")
        check_resume_flags(args)
        # A missing file is left to resume(), whose error names it.
        with (output_lock(Path(args.resume).parent, log=tell) if Path(args.resume).is_file()
              else contextlib.nullcontext()), warnings.catch_warnings():
            # One line per warning (e.g. a file from another bioplastic version).
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, *a, **k: print(f"warning: {message}", file=sys.stderr,
                                                                   flush=True)
            result = resume(args.resume, iterations=args.iterations,
                            progress=False if args.no_progress else None)
        print(result.summary())
        print(f"run file: {result.run_file}")
        return 0
    missing = [f"--{n}" for n in ("model", "out") if getattr(args, n) is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} required (or --resume RUN.h5)")
    # Before any work: flags the run could only fail on after training.
    out = check_out_folder(args.out)
    check_run_seed(args.seed)
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ConfigError(f"--checkpoint-every must be a positive integer, got {args.checkpoint_every}; "
                          "omit it for no checkpoints")
    for flag in ("iterations", "continue_after"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            raise ConfigError(f"--{flag.replace('_', '-')} must be a non-negative integer, got {value}")

    overrides = list(getattr(args, "overrides", None) or [])
    spec = load_spec(args.model, overrides=overrides)
    if args.task is None and "name" not in spec["task"]:
        raise ConfigError(f"--task required (or name = \"...\" in the [task] table of {spec['path']})")
    if getattr(args, "record", None) is not None:
        spec["record"] = record_from_flag(args.record, spec.get("record"))
    plan = run_settings(spec, task=args.task, rule=args.rule)
    task, rule = plan["task"], plan["rule"]
    model = {k: v for k, v in spec["model"].items() if k != "kind"}
    check_model_settings(spec["model"].get("kind"), model, where=str(spec.get("path", "spec")))
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
    check_run_seed(seed)
    # Every training setting, as train() / train_local() would check it, before OUT is created.
    check_training(net, task, kwargs, seed=seed, local=plan["local"])
    if plan["local"]:
        from ..io.specs import check_rule_on

        check_rule_on(rule, net, spec.get("rule"), where=str(spec.get("path", "spec")))
        _check_stp_scale(rule, kwargs.get("lambda_tcr", 1.0))
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
        if spec.get("nwb"):  # for the NWB export (bioplastic.export.nwb.nwb_metadata_from_spec)
            extra["nwb"] = spec["nwb"]
        result = fit(net, task, seed=seed, run_file=run_file,
                     progress=False if args.no_progress else None, extra_config=extra, **kwargs)
    print(result.summary())
    print(f"run file: {result.run_file}")
    return 0


def _check_stp_scale(rule, lambda_tcr) -> None:
    """For a local rule lambda_tcr multiplies the TCR-STP strength: refused, as train_local does,
    for a rule without tcr_stp unless it is the neutral 1."""
    from ..training.schedules import Constant, make_schedule

    schedule = make_schedule(lambda_tcr)
    if rule.stp is None and not (isinstance(schedule, Constant) and schedule.value == 1.0):
        raise ConfigError(f"lambda_tcr scales the TCR-STP strength, but rule {rule.name!r} has no 'tcr_stp' "
                          f"part; use e.g. '{rule.name}+tcr_stp'")


def record_from_flag(value: str, table=None) -> dict:
    """The ``[record]`` table ``--record [WHAT]`` asks for: ``table`` (the spec's, or defaults) with
    ``what`` from the comma-separated ``value`` when it is not empty."""
    from ..io.specs import normalise_record

    record = dict(table or {})
    if value and value.strip():
        record["what"] = value
    return normalise_record(record)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and odd values: compare their text
        return str(a) == str(b)


def _schedule_text(desc) -> str:
    if isinstance(desc, dict):
        if desc.get("kind") == "constant" and "value" in desc:
            return f"{desc['value']!r}"
        return "a schedule " + ", ".join(f"{k}={v!r}" for k, v in desc.items())
    return repr(desc)


def _model_conflict(given: str, cfg: dict):
    """None if spec ``given`` is the run's spec, or its [model] settings match the run's; else
    ``(given text, run's text)`` naming the first setting that differs."""
    from ..io.specs import load_spec

    spec = load_spec(given)
    recorded = cfg.get("spec")
    if recorded is not None:
        try:
            if Path(spec["path"]).resolve() == Path(recorded).resolve():
                return None
        except OSError:
            pass
    run_model = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
    for key, value in spec["model"].items():
        if key in run_model and not _same(value, run_model[key]):
            label = recorded if recorded else run_model.get("kind", "?")
            return f"{given} ({key} = {value!r})", f"{label} ({key} = {run_model[key]!r})"
    return None


def check_resume_flags(args) -> None:
    """ConfigError if a flag given with ``--resume`` differs from what the run file recorded.

    A resumed run keeps the settings it was started with; a flag equal to the
    recorded value is accepted. ``--iterations`` may raise the budget (checked
    by :func:`~bioplastic.training.resume`).
    """
    flags = {"seed": args.seed, "tcr": args.tcr, "model": args.model, "task": args.task, "rule": args.rule,
             "checkpoint_every": args.checkpoint_every, "no_early_stop": args.no_early_stop or None,
             "continue_after": args.continue_after}
    if all(v is None for v in flags.values()):
        return
    from ..io.runfile import read_run

    data = read_run(args.resume, checkpoints=False)  # its errors name the file and what is wrong
    cfg = data.config
    training = cfg.get("training", {}) if isinstance(cfg.get("training"), dict) else {}
    conflicts = []

    def conflict(flag, given, what, run_value):
        shown = f"--{flag} {given}" if given is not None else f"--{flag}"
        conflicts.append((flag, f"{shown} conflicts with the run's {what} {run_value}"))

    if args.seed is not None and not _same(args.seed, cfg.get("seed", data.seed)):
        conflict("seed", args.seed, "seed", cfg.get("seed", data.seed))
    if args.tcr is not None:
        desc = training.get("lambda_tcr")
        if not (isinstance(desc, dict) and desc.get("kind") == "constant" and _same(desc.get("value"), args.tcr)):
            conflict("tcr", args.tcr, "lambda_tcr", _schedule_text(desc))
    if args.model is not None:
        found = _model_conflict(args.model, cfg)
        if found is not None:
            conflict("model", found[0], "model", found[1])
    if args.task is not None:
        run_task = cfg.get("task", {}).get("name") if isinstance(cfg.get("task"), dict) else None
        if args.task != run_task:
            from ..tasks import get_task

            if get_task(args.task).name != run_task:
                conflict("task", args.task, "task", run_task)
    if args.rule is not None:
        run_rule = training.get("rule", "bptt")
        run_name = run_rule.get("name") if isinstance(run_rule, dict) else run_rule
        if args.rule != run_name:
            canonical = args.rule
            if args.rule.strip().lower() != "bptt":
                from ..rules import get_rule

                canonical = get_rule(args.rule).name
            if canonical != run_name:
                conflict("rule", args.rule, "rule", run_name)
    if args.checkpoint_every is not None and not _same(args.checkpoint_every, training.get("checkpoint_every")):
        conflict("checkpoint-every", args.checkpoint_every, "checkpoint_every", training.get("checkpoint_every"))
    if args.no_early_stop and training.get("early_stop", True) is not False:
        conflict("no-early-stop", None, "early_stop", training.get("early_stop", True))
    if args.continue_after is not None and not _same(args.continue_after, training.get("continue_after", 0)):
        conflict("continue-after", args.continue_after, "continue_after", training.get("continue_after", 0))
    if conflicts:
        drop = ", ".join(f"--{flag}" for flag, _ in conflicts)
        raise ConfigError(f"{'; '.join(text for _, text in conflicts)} ({args.resume}); a resumed run keeps its "
                          f"settings: drop {drop}")
