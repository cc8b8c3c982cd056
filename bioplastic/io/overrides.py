"""``--set SECTION.KEY=VALUE`` overrides of a spec's TOML tables.

An override names a dotted path into the spec (``model.n_units``,
``rule.tcr_stp.eta_s``, ``training.lambda_tcr.value``) and a value written
as a TOML value (``32``, ``0.05``, ``true``, ``"adam"``, ``[1, 2]``,
``{kind = "constant", value = 1.0}``). A value that is not valid TOML is
read as a number if Python can (``.5``), else kept as a plain string, so
``rule.eprop.feedback=random`` needs no quotes.

Examples
--------
>>> parse_override("rule.tcr_stp.eta_s=0.05")
(('rule', 'tcr_stp', 'eta_s'), 0.05)
>>> parse_override("rule.eprop.feedback=random")
(('rule', 'eprop', 'feedback'), 'random')
>>> apply_overrides({"model": {"kind": "lfrnn"}}, ["model.n_units=32", "task.n_steps=40"])
{'model': {'kind': 'lfrnn', 'n_units': 32}, 'task': {'n_steps': 40}}
"""
from __future__ import annotations

import copy
import tomllib

from ..errors import ConfigError
from ..registry import check_keys

#: The expected form, quoted in error messages.
FORM = "SECTION.KEY=VALUE (e.g. model.n_units=32, rule.tcr_stp.eta_s=0.05, rule.name=eprop)"


def parse_value(text: str):
    """Read ``text`` as a TOML value; else as a float; else return it unchanged.

    Parameters
    ----------
    text : str
        What follows the ``=`` of an override.

    Returns
    -------
    object
        int, float, bool, str, list or dict (TOML inline table).
    """
    try:
        doc = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        doc = None
    if doc is not None and set(doc) == {"v"}:
        return doc["v"]
    try:
        return float(text.strip())
    except ValueError:
        return text


def parse_override(text: str, *, min_parts: int = 2, form: str = FORM) -> tuple[tuple[str, ...], object]:
    """Split ``"SECTION.KEY[.SUBKEY...]=VALUE"`` into its key path and parsed value.

    Parameters
    ----------
    text : str
        One ``--set`` argument.
    min_parts : int, default 2
        Fewest parts of the key path: 2 for a spec (a section and a key), 1
        for a protocol's settings (``seeds=3``).
    form : str
        The expected form, quoted in error messages.

    Returns
    -------
    (tuple of str, object)
        The key path and the value (see :func:`parse_value`).

    Raises
    ------
    ConfigError
        Without ``=``, with fewer than ``min_parts`` parts (a key with no
        section), or with an empty key part; the message names the expected form.
    """
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"--set {text!r}: no '='; expected {form}")
    key, _, value = text.partition("=")
    parts = tuple(p.strip() for p in key.strip().split("."))
    if len(parts) < min_parts or not all(parts):
        what = "SECTION.KEY" if min_parts > 1 else "KEY or TABLE.KEY"
        raise ConfigError(f"--set {text!r}: {key.strip()!r} is not {what}; expected {form}")
    return parts, parse_value(value.strip())


def apply_overrides(data: dict, overrides, sections=None) -> dict:
    """Return a deep copy of ``data`` with every override applied, in order.

    Missing tables along a path are created; a later override of the same
    key wins.

    Parameters
    ----------
    data : dict
        A parsed TOML document (tables are dicts).
    overrides : iterable of str or of (key path, value) pairs
        ``"SECTION.KEY=VALUE"`` strings (see :func:`parse_override`) or
        already parsed pairs.
    sections : iterable of str or None
        Valid section names; an override of another section is an error
        naming the closest valid one. None: any.

    Returns
    -------
    dict

    Raises
    ------
    ConfigError
        On a malformed override, an unknown section, or a path that runs
        through a value that is not a table (``training.lr.x=1``).
    """
    out = copy.deepcopy(data)
    for item in overrides:
        parts, value = parse_override(item) if isinstance(item, str) else (tuple(item[0]), item[1])
        shown = item if isinstance(item, str) else ".".join(parts) + "=" + repr(value)
        if sections is not None:
            check_keys(f"--set {shown!r}: unknown section", {parts[0]}, sections)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {shown!r}: {'.'.join(parts[:i + 1])!r} is {child!r}, not a table, "
                                  "so it has no keys to set")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def format_override(item) -> str:
    """The ``"SECTION.KEY=VALUE"`` text of an override (for run files and messages)."""
    if isinstance(item, str):
        return item.strip()
    parts, value = item
    return ".".join(parts) + "=" + repr(value)
