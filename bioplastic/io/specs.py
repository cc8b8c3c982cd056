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

    [record]                # record activity at checkpoints: present = on; keys of bioplastic.recording.Recording
    what = ["rates", "states", "outputs"]
    n_trials = 16

    [nwb]                   # metadata for the NWB export, kept in the run file's config["nwb"]
    experimenter = "Doe, Jane"
    lab = "Tanaka lab"

A lambda_TCR schedule is a number or a table, e.g. ``[training.lambda_tcr]``
with ``kind = "linear"``, ``value = 0.1``, ``iterations = 500``.

A typo'd section, key, rule part, schedule setting or record setting is
an error that names it and the closest valid one. ``load_spec(..., overrides=["model.n_units=32"])``
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
SECTIONS = ("model", "training", "task", "rule", "local_training", "record", "nwb")
#: Arguments of the training functions that a spec cannot set (the CLI or the caller does).
_NOT_SETTINGS = {"network", "task", "rule", "params", "run_file", "progress", "extra_config"}
#: ``[training]`` keys that train_local accepts with another meaning, so local rules do not inherit them:
#: for BPTT ``lambda_tcr`` weighs the TCR loss term, for a local rule it multiplies the TCR-STP strength.
NOT_INHERITED = ("lambda_tcr",)
_REPO_ROOT = Path(__file__).resolve().parents[2]


def search_dirs(kind: str) -> list[Path]:
    """Folders searched for shipped ``models`` or ``protocols``: ./kind, then the repo's.

    For ``models`` each folder's ``examples/`` sub-folder follows (the example
    specs of docs/specs.md), so ``--model tcr_linear`` finds
    ``models/examples/tcr_linear.toml``; a shipped spec of the same
    name comes first.
    """
    dirs = [Path.cwd() / kind, _REPO_ROOT / kind]
    if kind == "models":
        dirs += [d / "examples" for d in dirs]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d not in dirs[:i]]


def resolve(name_or_path, kind: str, suffixes: tuple[str, ...]) -> Path:
    """Find a file given as a path or as a name in ``search_dirs(kind)``."""
    p = Path(name_or_path)
    if p.is_file():
        if suffixes and p.suffix not in suffixes:  # e.g. a spec given where a protocol script is expected
            raise ConfigError(f"{str(p)!r} is not a {kind[:-1]} file: expected {' or '.join(suffixes)}")
        return p
    if p.is_dir():
        raise ConfigError(f"{str(p)!r} is a folder, not a {kind[:-1]} file ({' or '.join(suffixes)})")
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
        A spec file, or the name of one in ``models/`` or ``models/examples/``
        (``"lfrnn"``, ``"tcr_linear"``), or a model kind without a spec file
        (a plugin's): the kind with its default settings.
    overrides : iterable of str, default ()
        ``"SECTION.KEY=VALUE"`` strings (``"model.n_units=32"``,
        ``"rule.tcr_stp.eta_s=0.05"``, ``"rule.name=eprop"``), applied in
        order before the checks, so an override with an unknown key fails as
        the same key in the file would. See :mod:`bioplastic.io.overrides`.

    Returns
    -------
    dict
        ``{"model", "training", "task", "rule", "local_training", "nwb": dict,
        "record": dict or None, "path": str, "overrides": list of str}``;
        absent sections are empty dicts, an absent ``[record]`` is None (no
        recording; an empty ``[record]`` records the defaults). ``task`` and
        ``rule`` are the tables as written (``task``: optional ``name`` plus
        settings; ``rule``: optional ``name`` plus one table per rule part,
        part names lower-cased); ``record["what"]`` is a list.

    Raises
    ------
    UnknownNameError
        For an unknown spec, model kind, task name, rule (part) name or
        schedule kind, naming the closest known one.
    ConfigError
        For invalid TOML, a missing ``[model]``/``kind``, an unknown section
        or key (naming the closest valid one), a rule setting the rule does
        not take, a value of the wrong type, or a malformed override.
    """
    try:
        path = resolve(name_or_path, "models", (".toml",))
    except UnknownNameError:
        default = _default_spec(name_or_path)
        if default is None:
            from ..networks import MODELS

            specs = {f.stem for d in search_dirs("models") for f in d.glob("*.toml") if not f.stem.startswith("_")}
            raise UnknownNameError(unknown_name_message("no model", name_or_path,
                                                        specs | set(MODELS.names()))) from None
        return spec_from_data(default, f"<defaults of model kind {str(name_or_path).lower()!r}>", overrides)
    return spec_from_data(read_toml(path), str(path), overrides)


def _default_spec(name):
    """``{"model": {"kind": name}}`` when ``name`` is a model kind without a spec file (a
    plugin's, say: ``bioplastic train --model mykind`` then runs it with its defaults); else None."""
    from ..networks import MODELS

    if not isinstance(name, str) or name != Path(name).name or name.lower() not in MODELS:
        return None
    return {"model": {"kind": name.lower()}}


def read_toml(path) -> dict:
    """Parse a TOML file; ConfigError naming it when it is not valid TOML."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8 text; a binary or mis-encoded file is not a spec
        raise ConfigError(f"{path}: not a TOML file (not UTF-8 text at byte {exc.start})") from exc
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a TOML file") from None


def spec_from_data(data: dict, where: str, overrides=()) -> dict:
    """Check a parsed spec (with ``--set`` overrides applied) and return it as :func:`load_spec` does.

    Parameters
    ----------
    data : dict
        The TOML document: section name -> table.
    where : str
        Where it came from (a path); starts every error message and is the
        result's ``path``.
    overrides : iterable of str or (key path, value) pairs
        Applied after a first check of ``data`` (so a file error names the
        file alone) and checked again (``"(after --set)"``).
    """
    check_spec_data(data, where)
    overrides = list(overrides or ())
    if overrides:
        data = apply_overrides(data, overrides, SECTIONS)
        check_spec_data(data, f"{where} (after --set)")
    rule = {}
    for key, value in data.get("rule", {}).items():
        rule[key.lower()] = value.strip().lower() if key == "name" else dict(value)
    record = data.get("record")
    return {"model": dict(data["model"]), "training": dict(data.get("training", {})),
            "task": dict(data.get("task", {})), "rule": rule,
            "local_training": dict(data.get("local_training", {})),
            "record": None if record is None else normalise_record(record),
            "nwb": copy.deepcopy(dict(data.get("nwb", {}))), "path": str(where),
            "overrides": [format_override(o) for o in overrides]}


def check_spec_data(data: dict, where: str) -> None:
    """Check every section of a parsed spec; ``where`` starts each message.

    Used for spec files (:func:`load_spec`) and for every job of a sweep
    (:mod:`bioplastic.sweep`), so both refuse the same things the same way.
    """
    check_keys(f"{where}: unknown section(s)", data, SECTIONS)
    for section, table in data.items():
        if not isinstance(table, dict):
            hint = (f" (e.g. [{section}] then name = {table!r})" if section in ("rule", "task")
                    and isinstance(table, str) else "")
            raise ConfigError(f"{where}: {section!r} must be a table ([{section}] with keys below it), "
                              f"got {table!r}{hint}")
    if "model" not in data or "kind" not in data["model"]:
        raise ConfigError(f"{where}: needs a [model] table with a 'kind' (e.g. kind = \"lfrnn\")")
    _check_model_keys(where, data["model"])
    _check_training(f"{where} [training]", data.get("training", {}), training_keys())
    _check_local_training(where, data.get("local_training", {}))
    _check_task(where, data.get("task", {}))
    _check_rule(where, data.get("rule", {}))
    if "record" in data:
        if "record" in data.get("training", {}):
            raise ConfigError(f"{where}: recording is set twice, in [record] and as [training] record; "
                              "keep the [record] table")
        _check_record(f"{where} [record]", data["record"])
    _check_nwb(f"{where} [nwb]", data.get("nwb", {}))


def _check_model_keys(where, model: dict) -> None:
    from ..networks import MODELS
    from ..preflight import check_model_settings

    try:
        cls = MODELS.get(model["kind"])
    except UnknownNameError as exc:
        raise UnknownNameError(f"{where} [model] kind: {exc}") from None
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_inputs", "n_outputs"}
    check_keys(f"{where} [model]: unknown key(s)", set(model) - {"kind"}, accepted)
    check_model_settings(model["kind"], {k: v for k, v in model.items() if k != "kind"}, where=where)


#: Where a misplaced [training] key belongs.
_ELSEWHERE = {"rule": "the rule goes in [rule] as name = \"eprop+tcr_stp\" (or --rule)",
              "task": "the task goes in [task] as name = \"flipflop\" (or --task)",
              "model": "the network goes in [model]"}


def _check_training(where: str, table: dict, accepted) -> None:
    """Keys of a ``[training]``-like table and the values that are tables of their own."""
    for key, hint in _ELSEWHERE.items():
        if key in table and key not in accepted:
            raise ConfigError(f"{where}: {key!r} is not a training setting; {hint}")
    check_keys(f"{where}: unknown key(s)", table, accepted)
    if "lambda_tcr" in table:
        check_schedule(f"{where} lambda_tcr", table["lambda_tcr"])
    if isinstance(table.get("criterion"), dict):
        from ..training.criteria import SuccessCriterion

        check_keys(f"{where} criterion: unknown setting(s)", table["criterion"],
                   SuccessCriterion.__dataclass_fields__)
    if isinstance(table.get("memory_test"), dict):
        from ..training.evaluation import MEMORY_TEST

        check_keys(f"{where} memory_test: unknown setting(s)", table["memory_test"], MEMORY_TEST)
    if "record" in table:
        _check_record(f"{where} record", table["record"])


def check_schedule(where: str, value) -> None:
    """Check a lambda_TCR schedule: a number or a table with ``kind`` and that kind's settings.

    Raises
    ------
    UnknownNameError
        For an unknown ``kind`` (naming the closest one).
    ConfigError
        For a setting the kind does not take (naming the closest one) or an
        invalid value; the message starts with ``where``.

    Examples
    --------
    >>> check_schedule("[training] lambda_tcr", {"kind": "linear", "value": 0.1, "iterations": 500})
    >>> check_schedule("[training] lambda_tcr", {"kind": "linear", "iteration": 500})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bioplastic.errors.ConfigError: [training] lambda_tcr: ... 'iteration' (did you mean 'iterations'?); ...
    """
    from ..training.schedules import SCHEDULES, make_schedule

    if isinstance(value, dict):
        kind = value.get("kind", "constant")
        if not isinstance(kind, str):
            raise ConfigError(f"{where} kind must be a schedule name such as \"linear\", got {kind!r}")
        try:
            cls = SCHEDULES.get(kind)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{where} kind: {exc}") from None
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        check_keys(f"{where}: unknown setting(s) for schedule {cls.kind!r}", set(value) - {"kind"}, accepted)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number or a schedule table such as "
                          f"{{kind = \"linear\", value = 0.1, iterations = 500}}, got {value!r}")
    try:
        make_schedule(value)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


#: Keys of a ``[record]`` table (the fields of :class:`bioplastic.recording.Recording`).
RECORD_KEYS = ("what", "n_trials", "at", "noise")


def normalise_record(table) -> dict:
    """A ``[record]`` table with ``what`` as a list (``"rates,states"`` is split at commas)."""
    out = copy.deepcopy(dict(table))
    what = out.get("what")
    if isinstance(what, str):
        out["what"] = [w.strip() for w in what.split(",") if w.strip()]
    return out


def _check_record(where: str, table) -> None:
    from ..recording import make_recording

    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table such as {{what = [\"rates\"], n_trials = 16}}, got {table!r}")
    check_keys(f"{where}: unknown key(s)", table, RECORD_KEYS)
    table = normalise_record(table)
    what = table.get("what", ())
    if not isinstance(what, (list, tuple)) or not all(isinstance(w, str) for w in what):
        raise ConfigError(f"{where} what must be a list of names such as [\"rates\", \"states\"], got {what!r}")
    if "noise" in table and not isinstance(table["noise"], bool):
        raise ConfigError(f"{where} noise must be true or false, got {table['noise']!r}")
    try:
        make_recording(table)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_nwb(where: str, table: dict) -> None:
    """Keys and values of ``[nwb]``, as :func:`bioplastic.export.nwb.nwb_metadata_from_spec` reads them."""
    if not table:
        return
    from ..export.nwb import SPEC_KEYS, nwb_metadata_from_spec

    check_keys(f"{where}: unknown key(s)", table, SPEC_KEYS)
    try:
        nwb_metadata_from_spec(table)
    except ConfigError as exc:
        text = str(exc)
        for prefix in ("[nwb] ", "NWB "):  # the exporter's own prefix: ``where`` says it already
            text = text[len(prefix):] if text.startswith(prefix) else text
        raise ConfigError(f"{where}: {text}") from None


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
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where} [task]: {exc}") from None
    else:  # the task comes from --task: check against every task, the chosen one checks again
        known = {k for n in TASKS.names() for k in TASKS.get(n).defaults}
        check_keys(f"{where} [task]: unknown setting(s) (of any task)", settings, known | {"name"})


#: ``[local_training]`` keys that may hold a table (a schedule, a criterion...) rather than name a rule.
_TABLE_SETTINGS = ("lambda_tcr", "criterion", "memory_test")


def _check_local_training(where, table: dict) -> None:
    """Keys of ``[local_training]`` and of its per-rule tables ``[local_training.<rule>]``."""
    from ..rules import list_rules

    accepted = local_training_keys()
    is_rule = lambda k, v: isinstance(v, dict) and k not in _TABLE_SETTINGS  # noqa: E731
    plain = {k: v for k, v in table.items() if not is_rule(k, v)}
    _check_training(f"{where} [local_training]", plain, accepted)
    known = list_rules()
    for key, sub in table.items():
        if not is_rule(key, sub):
            continue
        if key.lower() not in known:
            raise UnknownNameError(unknown_name_message(f"{where} [local_training.{key}]: unknown rule", key,
                                                        known))
        bad = [k for k, v in sub.items() if isinstance(v, dict) and k not in _TABLE_SETTINGS]
        if bad:
            raise ConfigError(f"{where} [local_training.{key}]: {bad[0]!r} is a table; per-rule training settings "
                              "are plain keys (lr = 0.003) or a schedule (lambda_tcr = {kind = ...})")
        _check_training(f"{where} [local_training.{key}]", sub, accepted)


def _rule_class(part: str):
    from ..rules.registry import RULES, _ensure

    _ensure(part)
    return RULES.get(part)


def _check_rule_values(where: str, part: str, settings: dict) -> None:
    """Type of each setting against the rule constructor's default (a number where it takes a number...)."""
    try:
        params = inspect.signature(_rule_class(part).__init__).parameters
    except Exception:  # noqa: BLE001 - a plugin without a plain constructor: the rule checks its values
        return
    for key, value in settings.items():
        default = params[key].default if key in params else None
        if default is None or default is inspect.Parameter.empty:
            continue
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, (int, float)):
            ok, want = not isinstance(value, bool) and isinstance(value, (int, float)), "a number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise ConfigError(f"{where} [rule.{part}] {key} must be {want}, got {value!r}")


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
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where} [rule.{part}]: {exc}") from None
        _check_rule_values(where, part, value)


def check_rule_on(rule, network, table=None, where="spec") -> tuple:
    """``rule.check(network)`` before any work, as one-line errors naming the setting at fault.

    A rule checks most values only when it meets the network; a value of the
    wrong kind (``controller = 3``) can then fail deep inside with a
    TypeError. Here such a failure becomes a ConfigError naming the rule
    part and, by checking the parts' settings one at a time (from ``table``,
    a spec's ``[rule]`` table), the setting.

    Returns
    -------
    tuple of str
        The parameters the rule modifies (a ConfigError if none: a rule that
        changes nothing cannot be trained).
    """
    try:
        targets = rule.check(network)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, (ConfigError, UnknownNameError)):
            raise
        raise ConfigError(f"{where}: rule {rule.name!r}: {_blame(rule, network, table or {})} ({exc})") from None
    if not targets:
        raise ConfigError(f"rule {rule.name!r} modifies no parameter of this {network.kind!r} network "
                          "(tcr_stp alone only changes the dynamics: compose it with a task rule, "
                          "e.g. 'eprop+tcr_stp')")
    return targets


def _blame(rule, network, table: dict) -> str:
    from ..rules import get_rule

    for part in rule.name.split("+"):
        for key, value in (table.get(part) or {}).items():
            try:
                get_rule(part, **{key: value}).check(network)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                if not isinstance(exc, (ConfigError, UnknownNameError)):  # a clean error is about something else
                    return f"[rule.{part}] {key} = {value!r} is invalid"
    return "invalid setting"


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
        left out because they apply to BPTT only (sorted). A ``[record]``
        table becomes ``record`` (both loops record activity at
        checkpoints).
    """
    training = copy.deepcopy(dict(spec.get("training", {})))
    if not local:
        if spec.get("record") is not None:
            training["record"] = copy.deepcopy(spec["record"])
        return training, []
    accepted = local_training_keys() - set(NOT_INHERITED)
    kwargs = {k: v for k, v in training.items() if k in accepted}
    local_table = copy.deepcopy(dict(spec.get("local_training", {})))
    # A table value is a rule's own settings, unless it is a setting that takes a table (a schedule).
    kwargs.update({k: v for k, v in local_table.items() if not isinstance(v, dict) or k in _TABLE_SETTINGS})
    for part in ([] if rule is None else str(rule).lower().split("+")):
        kwargs.update(local_table.get(part, {}))
    if spec.get("record") is not None:
        kwargs["record"] = copy.deepcopy(spec["record"])
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
