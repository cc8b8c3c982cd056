"""Opening bioplastic HDF5 files with their schema checked."""
from __future__ import annotations

from pathlib import Path

import h5py

from .._version import __version__
from ..errors import SchemaError


def open_checked(path, schema: str, version: int, what: str, hint: str = "") -> h5py.File:
    """Open ``path`` read-only and check its ``schema`` and ``schema_version`` attributes.

    ``what`` names the kind of file in messages ("run file", "analysis
    file"); ``hint`` is appended when the file does not exist. Raises
    SchemaError for a missing, non-HDF5 (or truncated), foreign or
    other-version file; the caller closes the returned file (``with``).
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{what} {str(path)!r} does not exist{hint}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise SchemaError(f"{str(path)!r} is not a readable HDF5 file ({exc})") from exc
    found = f.attrs.get("schema")
    if found != schema:
        f.close()
        raise SchemaError(f"{str(path)!r} is not a bioplastic {what} "
                          f"(schema attribute {found!r}, expected {schema!r})")
    found_version = int(f.attrs.get("schema_version", -1))
    if found_version != version:
        f.close()
        raise SchemaError(f"{what} {str(path)!r} has schema version {found_version}; this bioplastic "
                          f"({__version__}) reads version {version}")
    return f
