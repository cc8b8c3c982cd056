"""Third-party rules through the entry-point group ``bioplastic.rules``.

A package registers a rule class in its metadata, e.g. in ``setup.cfg``::

    [options.entry_points]
    bioplastic.rules =
        my_rule = my_package.rules:MyRule

Plugins are discovered lazily (the first time a rule name is not a built-in,
or when rules are listed) and the result is cached; :func:`refresh_plugins`
forgets it (e.g. after installing a package into the running interpreter).
A plugin that fails to import or does not satisfy the rule contract emits a
:class:`PluginWarning` naming the entry point and the reason, and is
skipped: one broken package never breaks the others.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import warnings

from ..errors import ConfigError
from .registry import RULES, SOURCES, validate_rule_class

GROUP = "bioplastic.rules"

_state = {"loaded": False, "failures": {}, "names": set()}


class PluginWarning(UserWarning):
    """A rule plugin could not be loaded and was skipped."""


def entry_points(group: str = GROUP):
    """Installed entry points of ``group``."""
    return list(importlib.metadata.entry_points(group=group))


def _dist_label(ep) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


def load_entry_point(ep) -> str | None:
    """Load one entry point and register its rule; warn and return None on failure.

    Returns the registered name on success.
    """
    label = _dist_label(ep)
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not break bioplastic
        return _fail(ep, label, f"import failed: {type(exc).__name__}: {exc}")
    try:
        key = validate_rule_class(obj, name=ep.name)
    except ConfigError as exc:
        return _fail(ep, label, str(exc))
    if key in RULES and RULES.get(key) is not obj:
        return _fail(ep, label, f"the name {key!r} is already taken by {SOURCES.get(key, '?')}")
    RULES.register(key, obj, overwrite=True)
    SOURCES[key] = label
    _state["names"].add(key)
    return key


def _fail(ep, label, reason):
    msg = f"skipping bioplastic rule plugin {ep.name!r} ({ep.value}, from {label}): {reason}"
    _state["failures"][ep.name] = reason
    warnings.warn(msg, PluginWarning, stacklevel=3)
    return None


def load_plugins(eps=None) -> list[str]:
    """Discover and register plugin rules (once; cached). Returns names loaded now.

    Parameters
    ----------
    eps : iterable of importlib.metadata.EntryPoint or None
        Entry points to load instead of the installed ones (always loaded,
        not cached).
    """
    if eps is None:
        if _state["loaded"]:
            return []
        _state["loaded"] = True
        eps = entry_points()
    names = [load_entry_point(ep) for ep in eps]
    return [n for n in names if n is not None]


def refresh_plugins() -> list[str]:
    """Forget the cache, drop plugin rules, and discover again."""
    importlib.invalidate_caches()
    for name in _state["names"]:
        RULES._items.pop(name, None)  # the generic Registry has no removal
        SOURCES.pop(name, None)
    _state["names"].clear()
    _state["loaded"] = False
    _state["failures"].clear()
    return load_plugins()


def failures() -> dict:
    """Entry-point name -> reason, for plugins that failed to load."""
    return dict(_state["failures"])
