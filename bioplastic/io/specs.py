"""Model spec files (TOML) and the lookup of shipped specs and protocols.

A spec holds everything ``bioplastic train`` needs besides the seed and the
output folder. Only ``[model]`` is required::

    [model]                 # network settings, kind included
    kind = "lfrnn"
    n_units = 64
    g = 1.5

    [training]              # arguments of bioplastic.train (BPTT)
    iterations = 2000
    lr = 0.001

    [task]                  # task settings; name: the task when --task is not given
    name = "flipflop"
    n_steps = 100

    [rule]                  # name: the rule when --rule is not given (else bptt)
    name = "eprop+tcr_stp+freeze_in"
    [rule.tcr_stp]          # one table per rule part, used when the part is in the rule
    eta_s = 0.02
    [rule.freeze_in]
    eta = 10.0

    [local_training]        # overrides of [training] for local rules (not bptt)
    optimizer = "sgd"
    lr = 0.01
    [local_training.node_perturbation]   # and for one task rule, when it is in the rule
    lr = 0.003

A typo'd section, key or rule part is an error that names it and the
closest valid one. ``load_spec(..., overrides=["model.n_units=32"])``
applies ``--set`` overrides (:mod:`bioplastic.io.overrides`) before the
checks. See docs/specs.md.
"""
from __future__ import annotations

import copy
import inspect
import tomllib
from pathlib import Path

from ..errors import ConfigError, UnknownNameError
from ..registry import check_keys, unknown_name_message
from .overrides import apply_overrides, format_override

#: The sections a spec may have; only [model] is required.
SECTIONS = ("model", "training", "task", "rule", "local_training")
#: Arguments of the training functions that a spec cannot set (the CLI or the caller does).
_NOT_SETTINGS = {"network", "task", "rule", "params", "run_file", "progress", "extra_config"}
#: ``[training]`` keys that train_local accepts with another meaning, so local rules do not inherit them:
#: for BPTT ``lambda_tcr`` weighs the TCR loss term, for a local rule it multiplies the TCR-STP strength.
NOT_INHERITED = ("lambda_tcr",)
_REPO_ROOT = Path(__file__).resolve().parents[2]


def search_dirs(kind: str) -> list[Path]:
    """Folders searched for shipped ``models`` or ``protocols``: ./kind, then the repo's."""
    dirs = [Path.cwd() / kind, _REPO_ROOT / kind]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d not in dirs[:i]]


def resolve(name_or_path, kind: str, suffixes: tuple[str, ...]) -> Path:
    """Find a file given as a path or as a name in ``search_dirs(kind)``."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for d in search_dirs(kind):
        for suf in ("",) + suffixes:
            cand = d / f"{name_or_path}{suf}"
            if cand.is_file():
                return cand
    known = sorted({f.stem for d in search_dirs(kind) for f in d.iterdir()
                    if f.suffix in suffixes and not f.stem.startswith("_")})
    raise UnknownNameError(unknown_name_message(f"no {kind[:-1]}", name_or_path, known))


def _settable(func) -> set[str]:
    return {p for p in inspect.signature(func).parameters if p not in _NOT_SETTINGS and not p.startswith("_")}


def training_keys() -> set[str]:
    """Arguments of :func:`bioplastic.train` a spec's ``[training]`` may set."""
    from ..training.loop import train

    return _settable(train)


def local_training_keys() -> set[str]:
    """Arguments of :func:`bioplastic.training.local.train_local` a spec's
    ``[local_training]`` may set (and the ``[training]`` keys local rules use)."""
    from ..training.local import train_local

    return _settable(train_local)


def load_spec(name_or_path, overrides=()) -> dict:
    """Load and check a model spec, with optional ``--set`` overrides.

    Parameters
    ----------
    name_or_path : str or path
        A spec file, or the name of one in ``models/`` (``"lfrnn"``).
    overrides : iterable of str, default ()
        ``"SECTION.KEY=VALUE"`` strings (``"model.n_units=32"``,
        ``"rule.tcr_stp.eta_s=0.05"``, ``"rule.name=eprop"``), applied in
        order before the checks, so an override with an unknown key fails as
        the same key in the file would. See :mod:`bioplastic.io.overrides`.

    Returns
    -------
    dict
        ``{"model", "training", "task", "rule", "local_training": dict,
        "path": str, "overrides": list of str}``; absent sections are empty
        dicts. ``task`` and ``rule`` are the tables as written (``task``:
        optional ``name`` plus settings; ``rule``: optional ``name`` plus one
        table per rule part, part names lower-cased).

    Raises
    ------
    UnknownNameError
        For an unknown spec, model kind, task name or rule (part) name,
        naming the closest known one.
    ConfigError
        For invalid TOML, a missing ``[model]``/``kind``, an unknown section
        or key (naming the closest valid one), a rule setting the rule does
        not take, or a malformed override.
    """
    path = resolve(name_or_path, "models", (".toml",))
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    _check(data, str(path))
    overrides = list(overrides or ())
    if overrides:
        data = apply_overrides(data, overrides, SECTIONS)
        _check(data, f"{path} (after --set)")
    rule = {}
    for key, value in data.get("rule", {}).items():
        rule[key.lower()] = value.strip().lower() if key == "name" else dict(value)
    return {"model": dict(data["model"]), "training": dict(data.get("training", {})),
            "task": dict(data.get("task", {})), "rule": rule,
            "local_training": dict(data.get("local_training", {})), "path": str(path),
            "overrides": [format_override(o) for o in overrides]}


def _check(data: dict, where: str) -> None:
    """Check every section of a parsed spec; ``where`` starts each message."""
    check_keys(f"{where}: unknown section(s)", data, SECTIONS)
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section!r} must be a table ([{section}] with keys below it), "
                              f"got {table!r}")
    if "model" not in data or "kind" not in data["model"]:
        raise ConfigError(f"{where}: needs a [model] table with a 'kind' (e.g. kind = \"lfrnn\")")
    _check_model_keys(where, data["model"])
    check_keys(f"{where} [training]: unknown key(s)", data.get("training", {}), training_keys())
    _check_local_training(where, data.get("local_training", {}))
    _check_task(where, data.get("task", {}))
    _check_rule(where, data.get("rule", {}))


def _check_model_keys(where, model: dict) -> None:
    from ..networks import MODELS

    try:
        cls = MODELS.get(model["kind"])
    except UnknownNameError as exc:
        raise UnknownNameError(f"{where} [model] kind: {exc}") from None
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_inputs", "n_outputs"}
    check_keys(f"{where} [model]: unknown key(s)", set(model) - {"kind"}, accepted)


def _task_class(where, name):
    from ..tasks import TASKS

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} [task] name must be a task name (a string), got {name!r}")
    try:
        return TASKS.get(name.strip())
    except UnknownNameError as exc:
        raise UnknownNameError(f"{where} [task] name: {exc}") from None


def _check_task(where, table: dict) -> None:
    from ..tasks import TASKS

    settings = {k: v for k, v in table.items() if k != "name"}
    if "name" in table:
        cls = _task_class(where, table["name"])
        check_keys(f"{where} [task]: unknown setting(s) for task {cls.name!r}", settings, cls.defaults)
        try:
            cls(**settings)
        except ConfigError as exc:
            raise ConfigError(f"{where} [task]: {exc}") from None
    else:  # the task comes from --task: check against every task, the chosen one checks again
        known = {k for n in TASKS.names() for k in TASKS.get(n).defaults}
        check_keys(f"{where} [task]: unknown setting(s) (of any task)", settings, known | {"name"})


def _check_local_training(where, table: dict) -> None:
    """Keys of ``[local_training]`` and of its per-rule tables ``[local_training.<rule>]``."""
    from ..rules import list_rules

    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    check_keys(f"{where} [local_training]: unknown key(s)", plain, local_training_keys())
    known = list_rules()
    for key, sub in table.items():
        if not isinstance(sub, dict):
            continue
        if key.lower() not in known:
            raise UnknownNameError(unknown_name_message(f"{where} [local_training.{key}]: unknown rule", key,
                                                        known))
        bad = [k for k, v in sub.items() if isinstance(v, dict)]
        if bad:
            raise ConfigError(f"{where} [local_training.{key}]: {bad[0]!r} is a table; per-rule training settings "
                              "are plain keys (lr = 0.003)")
        check_keys(f"{where} [local_training.{key}]: unknown key(s)", sub, local_training_keys())


def _check_rule(where, table: dict) -> None:
    from ..rules import get_rule, list_rules

    known = list_rules()
    for key, value in table.items():
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where} [rule] name must be a rule name such as \"eprop+tcr_stp\", "
                                  f"got {value!r}")
            try:
                get_rule(value.strip().lower())
            except UnknownNameError as exc:
                raise UnknownNameError(f"{where} [rule] name: {exc}") from None
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{where} [rule]: {key!r} is neither 'name' nor a rule part's table; rule settings "
                              f"go in one table per part, e.g. [rule.tcr_stp] eta_s = 0.02 "
                              f"(rule parts: {', '.join(known)})")
        part = key.lower()
        if part not in known:
            raise UnknownNameError(unknown_name_message(f"{where} [rule.{key}]: unknown rule", key, known))
        try:
            get_rule(part, **value)
        except ConfigError as exc:
            raise ConfigError(f"{where} [rule.{part}]: {exc}") from None


def network_from_spec(spec: dict, task):
    """Build the spec's network sized for ``task``."""
    from ..networks import make_network

    model = dict(spec["model"])
    kind = model.pop("kind")
    return make_network(kind, task.n_inputs, task.n_outputs, **model)


def task_from_spec(spec: dict, name=None):
    """Build the task: ``name`` (e.g. ``--task``), else the spec's ``[task] name``.

    Parameters
    ----------
    spec : dict
        From :func:`load_spec`.
    name : str or None

    Returns
    -------
    Task
        With the settings of the spec's ``[task]`` table.

    Raises
    ------
    ConfigError
        Without a task name, or for a setting the task does not take (naming
        the closest valid one) or an invalid value.
    UnknownNameError
        For an unknown task name.
    """
    from ..tasks import TASKS, get_task

    table = dict(spec.get("task", {}))
    spec_name = table.pop("name", None)
    name = name if name is not None else spec_name
    where = spec.get("path", "spec")
    if name is None:
        raise ConfigError(f"no task: give --task NAME or set name = \"...\" in [task] of {where}")
    if table and isinstance(name, str):
        cls = TASKS.get(name)
        check_keys(f"{where} [task]: unknown setting(s) for task {cls.name!r}", table, cls.defaults)
    return get_task(name, **table)


def rule_name(spec: dict, name=None) -> str:
    """The rule to train with: ``name`` (e.g. ``--rule``), else ``[rule] name``, else ``"bptt"``;
    lower case, parts joined by ``+`` without spaces."""
    name = name if name is not None else spec.get("rule", {}).get("name", "bptt")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a rule is a registered name such as 'eprop+tcr_stp', got {name!r}")
    return "+".join(p.strip().lower() for p in name.split("+"))


def rule_from_spec(spec: dict, name=None):
    """Build the rule (see :func:`rule_name`) with each part's ``[rule.<part>]`` settings.

    Tables of parts that are not in the rule are ignored, so one spec serves
    every composition.

    Returns
    -------
    Rule

    Raises
    ------
    UnknownNameError
        For an unknown rule (part).
    ConfigError
        For an invalid composition or setting.
    """
    from ..rules import get_rule

    name = rule_name(spec, name)
    parts = name.split("+")
    table = spec.get("rule", {})
    settings = {p: copy.deepcopy(table[p]) for p in parts if isinstance(table.get(p), dict)}
    if len(parts) == 1:
        return get_rule(name, **settings.get(name, {}))
    return get_rule(name, **settings)


def uses_local_training(rule) -> bool:
    """True when ``bioplastic train`` trains ``rule`` with the local-rule loop
    (:func:`~bioplastic.training.local.train_local`): every rule but plain ``bptt``."""
    return str(getattr(rule, "name", rule)).lower() != "bptt"


def training_kwargs(spec: dict, local: bool, rule=None) -> tuple[dict, list[str]]:
    """The training arguments of a spec for BPTT or for a local rule.

    Parameters
    ----------
    spec : dict
        From :func:`load_spec`.
    local : bool
        False: ``[training]`` as it is (for :func:`bioplastic.train`).
        True: the ``[training]`` keys :func:`~bioplastic.training.local.train_local`
        accepts (except :data:`NOT_INHERITED`: ``lambda_tcr``, whose meaning
        differs), updated by ``[local_training]``, then by the table
        ``[local_training.<part>]`` of each part of ``rule`` that has one
        (in the composition's order, so a later part wins). A learning rate
        tuned for e-prop is not one for node perturbation.
    rule : str or None
        The rule (name or composition) the settings are for.

    Returns
    -------
    (dict, list of str)
        The keyword arguments and, for a local rule, the ``[training]`` keys
        left out because they apply to BPTT only (sorted).
    """
    training = copy.deepcopy(dict(spec.get("training", {})))
    if not local:
        return training, []
    accepted = local_training_keys() - set(NOT_INHERITED)
    kwargs = {k: v for k, v in training.items() if k in accepted}
    local_table = copy.deepcopy(dict(spec.get("local_training", {})))
    kwargs.update({k: v for k, v in local_table.items() if not isinstance(v, dict)})
    for part in ([] if rule is None else str(rule).lower().split("+")):
        kwargs.update(local_table.get(part, {}))
    return kwargs, sorted(set(training) - accepted)


def run_settings(spec: dict, task=None, rule=None) -> dict:
    """Everything a training run takes from a spec, given ``--task`` and ``--rule``.

    Parameters
    ----------
    spec : dict
        From :func:`load_spec`.
    task, rule : str or None
        Names that take precedence over the spec's ``[task] name`` and
        ``[rule] name`` (the rule defaults to ``"bptt"``).

    Returns
    -------
    dict
        ``task`` (Task), ``rule`` (Rule), ``local`` (bool: trained by the
        local-rule loop), ``training`` (keyword arguments, see
        :func:`training_kwargs`) and ``notes`` (list of one-line messages
        about settings that were ignored).
    """
    task_obj = task_from_spec(spec, task)
    rule_obj = rule_from_spec(spec, rule)
    local = uses_local_training(rule_obj)
    kwargs, ignored = training_kwargs(spec, local, rule_obj.name)
    notes = []
    if ignored:
        note = f"[training] key(s) for BPTT only, ignored by rule {rule_obj.name!r}: {', '.join(ignored)}"
        if "lambda_tcr" in ignored:
            note += " (a local rule's lambda_tcr, the TCR-STP multiplier, goes in [local_training])"
        notes.append(note)
    if not local and spec.get("rule", {}).get("bptt"):
        notes.append("[rule.bptt] is ignored by --rule bptt (BPTT training takes its settings from [training])")
    return {"task": task_obj, "rule": rule_obj, "local": local, "training": kwargs, "notes": notes}
