"""Model spec files (TOML) and the lookup of shipped specs and protocols.

A spec has a ``[model]`` table (network settings, ``kind`` included) and an
optional ``[training]`` table (arguments of :func:`bioplastic.train`)::

    [model]
    kind = "lfrnn"
    n_units = 64
    g = 1.5

    [training]
    iterations = 2000
    lr = 0.001

A typo'd key is an error that names the key and the closest valid one.
"""
from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from ..errors import ConfigError, UnknownNameError
from ..registry import check_keys, unknown_name_message

SECTIONS = ("model", "training")
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


def training_keys() -> set[str]:
    """Arguments of :func:`bioplastic.train` a spec may set."""
    from ..training.loop import train

    return set(inspect.signature(train).parameters) - {"network", "task", "params", "run_file", "progress",
                                                        "extra_config"}


def load_spec(name_or_path) -> dict:
    """Load and check a model spec; returns ``{"model": {...}, "training": {...}, "path": str}``."""
    path = resolve(name_or_path, "models", (".toml",))
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    check_keys(f"{path}: unknown section(s)", data, SECTIONS)
    if "model" not in data or "kind" not in data["model"]:
        raise ConfigError(f"{path}: needs a [model] table with a 'kind' (e.g. kind = \"lfrnn\")")
    model = dict(data["model"])
    training = dict(data.get("training", {}))
    check_keys(f"{path} [training]: unknown key(s)", training, training_keys())
    _check_model_keys(path, model)
    return {"model": model, "training": training, "path": str(path)}


def _check_model_keys(path, model: dict) -> None:
    from ..networks import MODELS

    cls = MODELS.get(model["kind"])
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_inputs", "n_outputs"}
    check_keys(f"{path} [model]: unknown key(s)", set(model) - {"kind"}, accepted)


def network_from_spec(spec: dict, task):
    """Build the spec's network sized for ``task``."""
    from ..networks import make_network

    model = dict(spec["model"])
    kind = model.pop("kind")
    return make_network(kind, task.n_inputs, task.n_outputs, **model)
