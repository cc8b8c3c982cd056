"""The rule registry: built-ins register in ``bioplastic.rules``; plugins
through the entry-point group ``bioplastic.rules`` (see :mod:`.plugins`).

Names are lower case; ``"a+b"`` builds a composition (:mod:`.compose`).
"""
from __future__ import annotations

from ..errors import ConfigError, UnknownNameError
from ..registry import Registry, check_keys
from .base import SIGNALS, Rule, missing_methods

RULES = Registry("rule")
#: Where each registered rule comes from: "bioplastic" or "<distribution> <version>".
SOURCES: dict[str, str] = {}


def validate_rule_class(cls, name=None) -> str:
    """Check that ``cls`` can serve as a rule; return its registry name.

    Raises
    ------
    ConfigError
        If ``cls`` is not a class, lacks a required method (``check``,
        ``init_state``, ``update``, ``settings``), has no name, or declares a
        signal outside :data:`~bioplastic.rules.base.SIGNALS`.
    """
    if not isinstance(cls, type):
        raise ConfigError(f"a rule must be a class, got {cls!r}")
    missing = missing_methods(cls)
    if missing:
        raise ConfigError(f"rule class {cls.__module__}.{cls.__qualname__} is missing method(s) "
                          f"{', '.join(repr(m) for m in missing)}; subclass bioplastic.rules.Rule and "
                          "implement them (see docs/plugins.md)")
    cname = getattr(cls, "name", "")
    if not isinstance(cname, str) or not cname:
        raise ConfigError(f"rule class {cls.__qualname__} must set a non-empty string `name`")
    if name is not None and name.lower() != cname.lower():
        raise ConfigError(f"rule class {cls.__qualname__} is named {cname!r} but registered as {name!r}")
    reads = getattr(cls, "reads", ())
    if isinstance(reads, (tuple, list)):
        bad = [s for s in reads if s not in SIGNALS]
        if bad:
            raise ConfigError(f"rule {cname!r} declares unknown signal(s) {bad}; known: {', '.join(SIGNALS)}")
    elif not isinstance(reads, property):
        raise ConfigError(f"rule {cname!r}: reads must be a tuple of signal names, got {reads!r}")
    if "+" in cname:
        raise ConfigError(f"rule name {cname!r} may not contain '+' (it composes rules)")
    return cname.lower()


def register_rule(cls, *, source=None, overwrite=False):
    """Register a rule class under its ``name``; usable as a decorator.

    ``source`` (shown by ``bioplastic rules list``) defaults to the class's
    top-level package.
    """
    key = validate_rule_class(cls)
    RULES.register(key, cls, overwrite=overwrite)
    SOURCES[key] = source or cls.__module__.split(".")[0]
    return cls


def _ensure(name: str) -> None:
    if name.lower() not in RULES:
        from .plugins import load_plugins

        load_plugins()


def get_rule(spec, **settings) -> Rule:
    """Build a rule from a name (``"eprop"``, ``"eprop+tcr_stp"``), a Rule or a description.

    For a composition, settings are keyed by part name, e.g.
    ``get_rule("eprop+tcr_stp", tcr_stp={"eta_s": 0.1})``.

    Raises
    ------
    UnknownNameError
        For a name no built-in or plugin provides (listing the known ones and
        any plugin that failed to load).
    ConfigError
        For an unknown setting (naming the closest valid one).
    """
    if isinstance(spec, Rule) or (not isinstance(spec, (str, dict)) and hasattr(spec, "update")):
        if settings:
            raise ConfigError("settings can only be given with a rule name")
        return spec
    if isinstance(spec, dict):
        return rule_from_description(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a rule is a registered name or a Rule object, got {spec!r}")
    parts = [p.strip() for p in spec.split("+")]
    if len(parts) > 1:
        from .compose import compose

        check_keys(f"settings for {spec!r} are keyed by part name", settings, parts)
        return compose(*[get_rule(p, **dict(settings.get(p, {}))) for p in parts])
    name = parts[0]
    _ensure(name)
    try:
        cls = RULES.get(name)
    except UnknownNameError as exc:
        from .plugins import failures

        failed = failures()
        note = ("; plugins that failed to load: " + "; ".join(f"{k} ({v})" for k, v in failed.items())
                if failed else "")
        raise UnknownNameError(f"{exc}{note}") from None
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if not {"args", "kwargs"} & accepted:
        check_keys(f"unknown setting(s) for rule {name!r}", settings, accepted)
    return cls(**settings)


def rule_from_description(desc: dict) -> Rule:
    """Rebuild a rule from :meth:`Rule.describe` output (as stored in run files)."""
    desc = dict(desc)
    if "rules" in desc:
        from .compose import compose

        return compose(*[rule_from_description(d) for d in desc["rules"]], weights=desc.get("weights"))
    name = desc.pop("name")
    for k in ("reads", "source"):
        desc.pop(k, None)
    return get_rule(name, **desc)


def list_rules() -> list[str]:
    """Names of every registered rule (built-ins and loaded plugins), sorted."""
    from .plugins import load_plugins

    load_plugins()
    return RULES.names()


def rule_table() -> list[dict]:
    """One row per rule: name, reads, modifies (default, per model), source, local."""
    from ..networks import list_models, make_network

    rows = []
    for name in list_rules():
        cls = RULES.get(name)
        rule = cls()
        kinds = rule.supported_models or list_models()
        mods = {}
        for kind in kinds:
            try:
                net = make_network(kind, 1, 1, n_units=2)
                mods[kind] = list(rule.check(net))
            except ConfigError:
                continue
        rows.append({"name": name, "reads": list(rule.reads), "modifies": mods,
                     "source": SOURCES.get(name, "?"), "local": bool(getattr(rule, "local", True))})
    return rows
