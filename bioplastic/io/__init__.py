"""Files: atomic writes, HDF5 run files, model spec files."""
from .atomic import atomic_path, write_text
from .runfile import SCHEMA, SCHEMA_VERSION, RunData, read_run, write_run

__all__ = ["atomic_path", "write_text", "SCHEMA", "SCHEMA_VERSION", "RunData", "read_run", "write_run"]
