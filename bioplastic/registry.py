"""A small registry per kind of thing (tasks, models, rules).

Names are lower-cased, duplicates are rejected, and an unknown name raises
:class:`~bioplastic.errors.UnknownNameError` listing what is known and the
closest match.
"""
from __future__ import annotations

import difflib

from .errors import ConfigError, UnknownNameError


class Registry:
    """Map lower-case names to objects of one kind.

    Parameters
    ----------
    kind : str
        What is registered ("task", "model", "rule"); used in messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, object] = {}

    def register(self, name: str, obj=None, *, overwrite: bool = False):
        """Register ``obj`` under ``name`` and return it.

        Without ``obj`` it returns a decorator: ``@REG.register("name")``.
        """
        if obj is None:
            return lambda o: self.register(name, o, overwrite=overwrite)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")
        key = name.lower()
        if key in self._items and not overwrite and self._items[key] is not obj:
            raise ConfigError(f"{self.kind} {key!r} is already registered")
        self._items[key] = obj
        return obj

    def get(self, name: str):
        """Return the object registered as ``name`` (case-insensitive)."""
        key = str(name).lower()
        if key not in self._items:
            raise UnknownNameError(unknown_name_message(f"unknown {self.kind}", name, self._items))
        return self._items[key]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name) -> bool:
        return str(name).lower() in self._items

    def __iter__(self):
        return iter(self.names())


def unknown_name_message(what: str, name, known) -> str:
    """``"<what> 'name'; did you mean 'x'? Known: a, b"`` (a full stop instead
    of the question when nothing is close)."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name).lower(), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"{what} {str(name)!r}{hint} Known: {', '.join(known) or 'none'}"


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
