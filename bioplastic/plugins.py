"""Rediscover installed plugins of every group: tasks, models and learning rules.

Each group's registry reads its entry points lazily, once per process
(:class:`bioplastic.registry.Plugins`). After ``pip install`` of a plugin
package in a running interpreter, :func:`refresh_plugins` forgets what was
found and discovers again.
"""
from __future__ import annotations

import importlib

from .registry import PLUGIN_GROUPS

#: The modules that create each group's loader when imported (imported on first use: ``import bioplastic``
#: stays light).
GROUP_MODULES = ("bioplastic.networks", "bioplastic.tasks", "bioplastic.rules.plugins")


def refresh_plugins() -> list[str]:
    """Rediscover the plugins of every group (tasks, models, rules); returns the names loaded.

    Examples
    --------
    >>> import bioplastic
    >>> isinstance(bioplastic.refresh_plugins(), list)
    True
    """
    for module in GROUP_MODULES:
        importlib.import_module(module)
    return [name for p in list(PLUGIN_GROUPS) for name in p.refresh()]
