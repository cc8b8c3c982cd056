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
skipped: one broken package never breaks the others. The loader is the one
tasks and models use (:class:`bioplastic.registry.Plugins`).
"""
from __future__ import annotations

from .. import registry as _registry
from ..registry import PluginWarning
from .registry import RULES, SOURCES, validate_rule_class

GROUP = "bioplastic.rules"

__all__ = ["GROUP", "PluginWarning", "entry_points", "failures", "load_entry_point", "load_plugins",
           "refresh_plugins"]

# RULES itself stays a plain registry: get_rule decides when to discover
# (compositions, descriptions) and adds the failures to its own message.
_PLUGINS = _registry.Plugins(RULES, GROUP, lambda obj, name: validate_rule_class(obj, name=name),
                             sources=SOURCES)


def entry_points(group: str = GROUP):
    """Installed entry points of ``group``."""
    return _registry.entry_points(group)


def load_entry_point(ep) -> str | None:
    """Load one entry point and register its rule; warn and return None on failure.

    Returns the registered name on success.
    """
    return _PLUGINS.load_entry_point(ep)


def load_plugins(eps=None) -> list[str]:
    """Discover and register plugin rules (once; cached). Returns names loaded now.

    Parameters
    ----------
    eps : iterable of importlib.metadata.EntryPoint or None
        Entry points to load instead of the installed ones (always loaded,
        not cached).
    """
    return _PLUGINS.load(eps)


def refresh_plugins() -> list[str]:
    """Forget the cache, drop plugin rules, and discover again."""
    return _PLUGINS.refresh()


def failures() -> dict:
    """Entry-point name -> reason, for plugins that failed to load."""
    return _PLUGINS.failures()
