"""Drop numba's on-disk kernel cache when any compiled module's source changed.

numba (``cache=True``) keys a cached function on the hash of its own source
file only. Kernels here inline compiled functions from other modules (the
LFRNN step inlines :mod:`.machinery.panels`, :mod:`.kernels.activations`, ...),
so after an edit to a callee, or a ``git pull`` into an editable install,
numba would load the caller's stale machine code: silently wrong results, as
happened once during development (a changed panel layout read by an old
kernel).

At import, :func:`drop_stale_kernel_cache` hashes every module of the package
that defines compiled code (it mentions ``@njit`` or ``@intrinsic``) and
compares the digest with the one recorded when the cache was last validated;
on a mismatch it deletes the package's cached kernels (``*.nbi``, ``*.nbc``)
so that they are compiled afresh, and records the new digest. It costs a few
milliseconds per import. Problems (a read-only install, an unexpected numba
layout) only skip the check, never stop the import.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
STAMP_NAME = "numba-kernel-sources.sha256"
_MARKERS = (b"@njit", b"@intrinsic", b"@vectorize")


def compiled_sources(package: Path = PACKAGE) -> list[Path]:
    """The package's modules that define numba-compiled code, sorted."""
    out = []
    for path in sorted(package.rglob("*.py")):
        try:
            text = path.read_bytes()
        except OSError:
            continue
        if any(m in text for m in _MARKERS):
            out.append(path)
    return out


def sources_digest(paths, package: Path = PACKAGE) -> str:
    """sha256 over the (relative path, contents) of ``paths``."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.relative_to(package)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def cache_dirs(paths) -> list[Path]:
    """Where numba keeps the cache of functions defined in ``paths``.

    ``__pycache__`` beside the sources, or, when ``NUMBA_CACHE_DIR`` is set,
    numba's per-directory folder under it.
    """
    from numba.core import caching, config

    dirs = {p.parent for p in paths}
    if config.CACHE_DIR:
        # numba names the folder after the source directory (its private helper, checked by a test)
        return sorted(Path(config.CACHE_DIR) / caching._CacheLocator.get_suitable_cache_subpath(str(d / "x.py"))
                      for d in dirs)
    return sorted(d / "__pycache__" for d in dirs)


def drop_stale_kernel_cache(package: Path = PACKAGE) -> bool:
    """Delete the package's cached kernels if the compiled sources changed.

    Returns True when files were deleted (or there was no record yet and the
    cache was emptied), False when the cache was current or could not be
    checked.
    """
    try:
        paths = compiled_sources(package)
        digest = sources_digest(paths, package)
        dirs = cache_dirs(paths)
        stamp = (dirs[0] if dirs else package / "__pycache__") / STAMP_NAME
        try:
            if stamp.read_text().strip() == digest:
                return False
        except OSError:
            pass
        for d in dirs:
            if d.is_dir():
                for f in list(d.glob("*.nbi")) + list(d.glob("*.nbc")):
                    try:
                        f.unlink()
                    except FileNotFoundError:  # another process got there first
                        pass
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}.tmp")
        tmp.write_text(digest + "\n")
        os.replace(tmp, stamp)  # atomic: a concurrent import reads the old or the new digest
        return True
    except Exception:  # a convenience for correctness; never a reason to fail the import
        return False
