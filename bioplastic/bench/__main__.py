"""``python -m bioplastic.bench``: the same as ``bioplastic bench`` (see :mod:`bioplastic.cli.bench`)."""
from __future__ import annotations

import sys

from ..errors import BioplasticError


def main(argv=None) -> int:
    """``python -m bioplastic.bench [--json FILE] [--repeats R] [--quick]``."""
    from ..memory import tune_if_wanted

    tune_if_wanted(default=True)  # the benchmark owns its process, as the CLI does
    import argparse

    from ..cli.bench import configure_parser, run

    parser = argparse.ArgumentParser(prog="python -m bioplastic.bench", description=__doc__.split("\n")[0])
    configure_parser(parser)
    try:
        return run(parser.parse_args(argv))
    except BioplasticError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
