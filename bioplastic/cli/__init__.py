"""Command line: ``bioplastic <command>``; each command is a small module."""
from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..errors import BioplasticError

COMMANDS = ("train", "run", "sweep", "bench", "list", "export", "rules", "analyze", "compare", "plot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bioplastic",
        description="Biologically plausible learning in recurrent rate networks.")
    parser.add_argument("--version", action="version", version=f"bioplastic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import importlib

    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``bioplastic`` console script."""
    from ..memory import tune_if_wanted

    # The command owns its process (and its forked workers inherit malloc's
    # settings): keep freed arrays warm unless BIOPLASTIC_TUNE_MALLOC=0.
    tune_if_wanted(default=True)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BioplasticError as exc:
        print(f"bioplastic {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bioplastic {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
