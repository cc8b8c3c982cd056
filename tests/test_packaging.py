"""The package installs whole: every folder of modules is a regular package.

setuptools' ``find_packages`` (``packages = find:`` in setup.cfg) skips a
folder without ``__init__.py``; an editable install still imports it as a
namespace package, so only a wheel install (or a user's ``pip install .``)
would miss it. That happened to ``bioplastic/kernels`` until 2026-12-07.
"""
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_folder_is_found_by_setuptools():
    found = set(find_packages(where=str(ROOT), include=["bioplastic", "bioplastic.*"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bioplastic").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert folders - found == set(), "folders of modules without __init__.py (left out of a wheel)"
    assert {"bioplastic.kernels", "bioplastic.machinery", "bioplastic.bench"} <= found
