"""Contract tests for learning rules, for plugin authors and for the built-ins.

``check_rule(rule)`` runs every check of :func:`rule_checks` and raises
:class:`RuleContractError` naming the first check that fails; the built-in
rules pass all of them (``tests/test_rules.py``). In a pytest suite, one test
per check (scikit-learn's ``parametrize_with_checks`` idea)::

    import pytest
    from bioplastic.testing import rule_checks
    from my_package import MyRule

    @pytest.mark.parametrize("name, check", rule_checks(MyRule()))
    def test_my_rule(name, check):
        check()

The checks use small networks (N = 6) of every model kind the rule supports,
a short 3-bit flip-flop (T = 12, B = 4) and fixed seeds.
"""
from __future__ import annotations

import functools
import json

import numpy as np

from .errors import BioplasticError, ConfigError

#: Small sizes used by the checks.
N_UNITS, N_STEPS, BATCH = 6, 12, 4


class RuleContractError(BioplasticError, AssertionError):
    """A rule breaks the contract every rule must keep."""


def _fail(rule, check, msg):
    raise RuleContractError(f"rule {getattr(rule, 'name', rule)!r} fails {check}: {msg}")


def _setup(rule, kind, seed=0):
    from .networks import make_network
    from .tasks import get_task

    task = get_task("flipflop", n_steps=N_STEPS)
    net = make_network(kind, task.n_inputs, task.n_outputs, n_units=N_UNITS, noise_std=0.05)
    rng = np.random.default_rng(seed)
    params = net.init_params(rng)
    batch = task.sample(BATCH, rng)
    noise = net.draw_noise(rng, N_STEPS, BATCH)
    return net, task, params, batch, noise


def runnable(rule):
    """The rule, or the smallest composition in which it can run alone.

    A rule that needs TCR-STP (``requires = ("stp",)``, freeze-in) is
    composed with ``tcr_stp``; a rule that only changes the dynamics (it
    modifies nothing, like ``tcr_stp``) is composed after ``eprop``.
    """
    from .networks import make_network
    from .rules import EProp, TCRSTP, compose

    if "stp" in getattr(rule, "requires", ()) and getattr(rule, "stp", None) is None:
        return compose(TCRSTP(), rule)
    kinds = supported_kinds(rule)
    if kinds and getattr(rule, "stp", None) is not None and not rule.check(make_network(kinds[0], 3, 3, n_units=N_UNITS)):
        return compose(EProp(), rule)
    return rule


def _one_update(rule, net, params, batch, noise, seed=0):
    from .rules.context import Context

    targets = rule.check(net)
    state = rule.init_state(net, params, np.random.default_rng(seed))
    stp = getattr(rule, "stp", None)
    ctx = Context(net, params, batch, noise=noise, stp=stp, rng=np.random.default_rng(seed + 1))
    return targets, rule.update(ctx.view(rule, targets), state)


def supported_kinds(rule) -> list[str]:
    """Model kinds the rule accepts (its ``check`` passes on a small network)."""
    from .networks import list_models, make_network

    kinds = []
    for kind in getattr(rule, "supported_models", None) or list_models():
        try:
            rule.check(make_network(kind, 3, 3, n_units=N_UNITS))
        except ConfigError:
            continue
        kinds.append(kind)
    return kinds


# -- the checks ---------------------------------------------------------------
def check_declarations(rule):
    """Name, reads within SIGNALS, required methods, JSON-serialisable settings."""
    from .rules.base import SIGNALS, missing_methods

    name = getattr(rule, "name", None)
    if not isinstance(name, str) or not name:
        _fail(rule, "check_declarations", "`name` must be a non-empty string")
    missing = missing_methods(rule)
    if missing:
        _fail(rule, "check_declarations", f"missing method(s) {missing}")
    reads = tuple(rule.reads)
    bad = [s for s in reads if s not in SIGNALS]
    if bad:
        _fail(rule, "check_declarations", f"reads unknown signal(s) {bad}; known {list(SIGNALS)}")
    try:
        json.dumps(rule.describe() if hasattr(rule, "describe") else rule.settings())
    except TypeError as exc:
        _fail(rule, "check_declarations", f"settings are not JSON-serialisable ({exc})")


def check_rebuild(rule):
    """The rule's description rebuilds an equivalent rule (run files record it)."""
    from .rules.registry import RULES, rule_from_description

    if not hasattr(rule, "describe"):
        return
    desc = rule.describe()
    try:
        if "rules" in desc or RULES.__contains__(rule.name):
            again = rule_from_description(json.loads(json.dumps(desc)))
        else:  # not registered (yet): rebuild from the class itself
            again = type(rule)(**json.loads(json.dumps(rule.settings())))
    except (BioplasticError, TypeError) as exc:
        _fail(rule, "check_rebuild", f"describe() does not rebuild the rule: {exc}")
    if again.describe() != desc:
        _fail(rule, "check_rebuild", f"rebuilt description {again.describe()} != {desc}")


def check_supports_a_model(rule):
    """At least one registered model kind passes ``rule.check``."""
    if not supported_kinds(rule):
        _fail(rule, "check_supports_a_model", "rule.check rejects every registered model")


def check_unknown_parameter(rule):
    """Asking the rule to modify a parameter the model lacks is a clear ConfigError."""
    import inspect

    if "modifies" not in inspect.signature(type(rule).__init__).parameters:
        return
    from .networks import make_network

    kind = supported_kinds(rule)[0]
    bad = type(rule)(**{**rule.settings(), "modifies": ("no_such_param",)})
    try:
        bad.check(make_network(kind, 3, 3, n_units=N_UNITS))
    except ConfigError as exc:
        if "no_such_param" not in str(exc):
            _fail(rule, "check_unknown_parameter", f"the error does not name the parameter: {exc}")
        return
    _fail(rule, "check_unknown_parameter", "modifies=('no_such_param',) was accepted")


def check_update(rule, kind):
    """One update: only declared targets, right shapes and dtype, finite, inputs untouched."""
    rule = runnable(rule)
    net, _, params, batch, noise = _setup(rule, kind)
    before = {k: v.copy() for k, v in params.items()}
    inputs = batch.inputs.copy()
    from .rules.context import UndeclaredSignalError

    try:
        targets, upd = _one_update(rule, net, params, batch, noise)
    except UndeclaredSignalError as exc:
        _fail(rule, f"check_update[{kind}]", f"reads a signal it does not declare: {exc}")
    from .rules.base import Update

    if not isinstance(upd, Update):
        _fail(rule, f"check_update[{kind}]", f"update() must return a bioplastic.rules.Update, got {type(upd)}")
    extra = upd.names() - set(targets)
    if extra:
        _fail(rule, f"check_update[{kind}]", f"updates {sorted(extra)} outside its targets {list(targets)}")
    for kind_, d in (("grads", upd.grads), ("deltas", upd.deltas)):
        for k, v in d.items():
            v = np.asarray(v)
            if v.shape != params[k].shape:
                _fail(rule, f"check_update[{kind}]", f"{kind_}[{k!r}] has shape {v.shape}, expected {params[k].shape}")
            if not np.all(np.isfinite(v)):
                _fail(rule, f"check_update[{kind}]", f"{kind_}[{k!r}] is not finite")
    for k, v in before.items():
        if not np.array_equal(v, params[k]):
            _fail(rule, f"check_update[{kind}]", f"update() changed params[{k!r}] in place")
    if not np.array_equal(inputs, batch.inputs):
        _fail(rule, f"check_update[{kind}]", "update() changed the batch")


def check_deterministic(rule, kind):
    """Same parameters, batch and seed give the same update."""
    rule = runnable(rule)
    net, _, params, batch, noise = _setup(rule, kind)
    _, a = _one_update(rule, net, params, batch, noise, seed=5)
    _, b = _one_update(rule, net, params, batch, noise, seed=5)
    for kind_ in ("grads", "deltas"):
        da, db = getattr(a, kind_), getattr(b, kind_)
        if set(da) != set(db) or any(not np.array_equal(da[k], db[k]) for k in da):
            _fail(rule, f"check_deterministic[{kind}]", f"two identical calls gave different {kind_}")


def check_trains(rule, kind):
    """A few iterations of train_local run, stay finite and change only the targets."""
    from .training.local import train_local

    rule = runnable(rule)
    net, task, params, _, _ = _setup(rule, kind)
    r = train_local(net, task, rule, iterations=3, batch_size=BATCH, seed=0, progress=False,
                    early_stop=False, diagnostics_every=1, diagnostic_splits=2, lr=1e-3, eval_batch_size=8)
    if not np.all(np.isfinite(r.history["task_loss"])):
        _fail(rule, f"check_trains[{kind}]", "non-finite task loss within 3 iterations")
    targets = rule.check(net)
    first = r.checkpoints[0]
    moved = [k for k in r.params if not np.array_equal(first[k], r.params[k])]
    outside = [k for k in moved if k not in targets]
    if outside:
        _fail(rule, f"check_trains[{kind}]", f"training changed {outside}, which the rule does not modify")
    if not moved:
        _fail(rule, f"check_trains[{kind}]", "three iterations changed no parameter")


def rule_checks(rule):
    """``(name, callable)`` pairs, one per check and supported model kind."""
    checks = [("check_declarations", functools.partial(check_declarations, rule)),
              ("check_rebuild", functools.partial(check_rebuild, rule)),
              ("check_supports_a_model", functools.partial(check_supports_a_model, rule)),
              ("check_unknown_parameter", functools.partial(check_unknown_parameter, rule))]
    try:
        kinds = supported_kinds(rule)
    except Exception:  # reported by check_supports_a_model
        kinds = []
    for kind in kinds:
        for fn in (check_update, check_deterministic, check_trains):
            checks.append((f"{fn.__name__}[{kind}]", functools.partial(fn, rule, kind)))
    return checks


def check_rule(rule) -> list[str]:
    """Run every contract check on ``rule``; return the names of the checks passed.

    Raises
    ------
    RuleContractError
        Naming the rule, the failing check and what is wrong.

    Examples
    --------
    >>> from bioplastic.rules import EProp
    >>> from bioplastic.testing import check_rule
    >>> "check_trains[lfrnn]" in check_rule(EProp())  # doctest: +SKIP
    True
    """
    from .rules.registry import get_rule

    rule = get_rule(rule)
    passed = []
    for name, fn in rule_checks(rule):
        fn()
        passed.append(name)
    return passed
