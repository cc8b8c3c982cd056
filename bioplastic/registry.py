"""A small registry per kind of thing (tasks, models, rules), and the
entry-point loader that lets third-party packages add to it.

Names are lower-cased, duplicates are rejected, and an unknown name raises
:class:`~bioplastic.errors.UnknownNameError` listing what is known and the
closest match.

Third-party packages register through three entry-point groups (declared
in their ``setup.cfg`` or ``pyproject.toml``; see docs/extending.md)::

    [options.entry_points]
    bioplastic.tasks =
        hold_bit = my_package.tasks:HoldBit
    bioplastic.models =
        numpy_rnn = my_package.models:NumpyRNN
    bioplastic.rules =
        delta_readout = my_package.rules:DeltaReadout

:class:`Plugins` discovers one group lazily (the first time a name is not
registered, or when names are listed) and caches the result. A plugin that
fails to import or breaks its contract is skipped with a
:class:`PluginWarning` naming the entry point and its package: one broken
package never breaks the built-ins or the other plugins. Asking for it by
name then raises an error that says why it could not be loaded.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import warnings

from .errors import ConfigError, UnknownNameError


class PluginWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


class Registry:
    """Map lower-case names to objects of one kind.

    Parameters
    ----------
    kind : str
        What is registered ("task", "model", "rule"); used in messages.
    group : str or None
        Entry-point group whose plugins join this registry lazily (e.g.
        ``"bioplastic.tasks"``); None: built-ins and explicit registrations only.
    validate : callable or None
        With ``group``: ``validate(obj, name)`` checks a loaded plugin object
        against the contract of its kind and returns its registry name;
        raises :class:`~bioplastic.errors.ConfigError` otherwise.

    Attributes
    ----------
    sources : dict of str to str
        Where each name comes from: the top-level package that registered it
        (``"bioplastic"`` for built-ins) or ``"<distribution> <version>"`` for
        a plugin.
    plugins : Plugins or None
        The entry-point loader of ``group``.
    """

    def __init__(self, kind: str, group: str | None = None, validate=None):
        self.kind = kind
        self._items: dict[str, object] = {}
        self.sources: dict[str, str] = {}
        self.plugins = None if group is None else Plugins(self, group, validate)

    def register(self, name: str, obj=None, *, overwrite: bool = False, source: str | None = None):
        """Register ``obj`` under ``name`` and return it.

        Without ``obj`` it returns a decorator: ``@REG.register("name")``.
        ``source`` (default: the top-level package of ``obj``) is recorded in
        :attr:`sources`.
        """
        if obj is None:
            return lambda o: self.register(name, o, overwrite=overwrite, source=source)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")
        key = name.lower()
        if key in self._items and not overwrite and self._items[key] is not obj:
            raise ConfigError(f"{self.kind} {key!r} is already registered")
        self._items[key] = obj
        self.sources[key] = source or str(getattr(obj, "__module__", None) or "?").split(".")[0]
        return obj

    def get(self, name: str):
        """Return the object registered as ``name`` (case-insensitive).

        A name that is not registered makes the registry discover its
        plugins first (once).

        Raises
        ------
        UnknownNameError
            If neither a built-in nor a plugin provides ``name``; the message
            lists the known names, and why a plugin of that name (or any
            other) failed to load.
        """
        key = str(name).lower()
        if key not in self._items and self.plugins is not None:
            self.plugins.load()
        if key not in self._items:
            raise UnknownNameError(self._unknown_message(name))
        return self._items[key]

    def _unknown_message(self, name) -> str:
        msg = unknown_name_message(f"unknown {self.kind}", name, self._items)
        if self.plugins is None:
            return msg
        own = self.plugins.failure(name)
        if own is not None:  # the user asked for exactly the broken plugin: say only why
            return f"{self.kind} {str(name)!r} comes from a plugin that failed to load: {own}"
        failed = self.plugins.failures()
        if failed:
            msg += "; plugins that failed to load: " + "; ".join(f"{k} ({v})" for k, v in failed.items())
        return msg

    def names(self) -> list[str]:
        """Every registered name, plugins included, sorted."""
        if self.plugins is not None:
            self.plugins.load()
        return sorted(self._items)

    def refresh_plugins(self) -> list[str]:
        """Forget the plugins found so far and discover them again (e.g. after
        ``pip install`` in the running interpreter); returns the names loaded."""
        return [] if self.plugins is None else self.plugins.refresh()

    def __contains__(self, name) -> bool:
        key = str(name).lower()
        if key not in self._items and self.plugins is not None:
            self.plugins.load()
        return key in self._items

    def __iter__(self):
        return iter(self.names())


def entry_points(group: str) -> list:
    """Installed entry points of ``group``."""
    return list(importlib.metadata.entry_points(group=group))


def dist_label(ep) -> str:
    """``"<distribution> <version>"`` of the package that declares ``ep``."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


class Plugins:
    """Lazy, cached discovery of one entry-point group into a :class:`Registry`.

    Parameters
    ----------
    registry : Registry
        Where loaded plugins are registered.
    group : str
        The entry-point group, e.g. ``"bioplastic.tasks"``.
    validate : callable
        ``validate(obj, name)`` returns the registry name of a loaded object
        or raises :class:`~bioplastic.errors.ConfigError` saying what is wrong.
    sources : dict or None
        Where to record each plugin's distribution (default
        ``registry.sources``).
    """

    def __init__(self, registry: Registry, group: str, validate, sources: dict | None = None):
        if validate is None:
            raise ConfigError(f"plugins of group {group!r} need a validate function")
        self.registry = registry
        self.group = group
        self.validate = validate
        self.sources = registry.sources if sources is None else sources
        self.loaded = False
        self.names: set[str] = set()
        self._failed: dict[str, tuple[str, str]] = {}  # entry-point name -> (reason, full description)
        PLUGIN_GROUPS.append(self)

    def load(self, eps=None) -> list[str]:
        """Discover and register the group's plugins (once; cached).

        Parameters
        ----------
        eps : iterable of importlib.metadata.EntryPoint or None
            Entry points to load instead of the installed ones (always
            loaded, not cached).

        Returns
        -------
        list of str
            The names registered by this call.
        """
        if eps is None:
            if self.loaded:
                return []
            self.loaded = True
            eps = entry_points(self.group)
        names = [self.load_entry_point(ep) for ep in eps]
        return [n for n in names if n is not None]

    def load_entry_point(self, ep) -> str | None:
        """Load one entry point and register its object; on failure warn and return None."""
        label = dist_label(ep)
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break bioplastic
            return self._fail(ep, label, f"import failed: {type(exc).__name__}: {exc}")
        try:
            key = self.validate(obj, ep.name)
        except ConfigError as exc:
            return self._fail(ep, label, str(exc))
        items = self.registry._items
        if key in items and items[key] is not obj:
            return self._fail(ep, label, f"the name {key!r} is already taken by {self.sources.get(key, '?')}")
        self.registry.register(key, obj, overwrite=True, source=label)
        self.sources[key] = label
        self.names.add(key)
        return key

    def _fail(self, ep, label: str, reason: str) -> None:
        """Record and warn why ``ep`` was skipped."""
        where = f"{ep.name!r} ({ep.value}, from {label})"
        self._failed[ep.name] = (reason, f"entry point {ep.name!r} = {ep.value} of {label} "
                                         f"(group {self.group}): {reason}")
        warnings.warn(f"skipping bioplastic {self.registry.kind} plugin {where}: {reason}", PluginWarning,
                      stacklevel=4)

    def failures(self) -> dict:
        """Entry-point name -> reason, for plugins that failed to load."""
        return {name: reason for name, (reason, _) in self._failed.items()}

    def failure(self, name) -> str | None:
        """Why the plugin with entry-point name ``name`` failed to load
        (naming its entry point and distribution), or None."""
        for ep_name, (_, description) in self._failed.items():
            if ep_name.lower() == str(name).lower():
                return description
        return None

    def refresh(self) -> list[str]:
        """Forget the cache, drop this group's plugins, and discover again."""
        importlib.invalidate_caches()
        for name in self.names:
            self.registry._items.pop(name, None)
            self.sources.pop(name, None)
            self.registry.sources.pop(name, None)
        self.names.clear()
        self._failed.clear()
        self.loaded = False
        return self.load()


#: Every plugin group's loader, for :func:`bioplastic.plugins.refresh_plugins`.
PLUGIN_GROUPS: list[Plugins] = []


def unknown_name_message(what: str, name, known) -> str:
    """``"<what> 'name'; did you mean 'x'? Known: a, b"`` (a full stop instead
    of the question when nothing is close)."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name).lower(), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"{what} {str(name)!r}{hint} Known: {', '.join(known) or 'none'}"


def check_plugin_class(cls, base: type, key: str, what: str, name: str | None = None) -> str:
    """Check that ``cls`` can be registered as a ``what`` ("model", "task"); return its
    lower-case registry name, the value of its attribute ``key`` ("kind", "name").

    ConfigError unless ``cls`` subclasses ``base``, sets ``key`` to a non-empty
    string, implements every abstract method, and (``name`` given, e.g. an
    entry point's) is registered under that name.
    """
    import inspect

    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"register_{what} expects a subclass of {base.__name__}, got {cls!r}")
    value = getattr(cls, key, None)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} class {cls.__name__} must set a non-empty string `{key}`")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ConfigError(f"{what} class {cls.__module__}.{cls.__qualname__} does not implement {missing} "
                          "(see docs/extending.md)")
    if name is not None and name.lower() != value.lower():
        said = "has kind" if key == "kind" else "is named"
        raise ConfigError(f"{what} class {cls.__qualname__} {said} {value!r} but registered as {name!r}")
    return value.lower()


def check_keys(where: str, given, accepted) -> None:
    """Raise ConfigError naming every key of ``given`` not in ``accepted``,
    each with its closest valid key, e.g. ``'tua' (did you mean 'tau'?)``."""
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        hints = []
        for k in unknown:
            m = difflib.get_close_matches(k, list(accepted), n=1, cutoff=0.5)
            hints.append(f"{k!r} (did you mean {m[0]!r}?)" if m else repr(k))
        raise ConfigError(f"{where}: {', '.join(hints)}; valid: {', '.join(sorted(accepted))}")
