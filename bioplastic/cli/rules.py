"""``bioplastic rules``: list the learning rules, or run a rule's contract tests."""
from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("rules", help="list learning rules (built-ins and plugins) or check one",
                       description="List the registered learning rules with what they read, what they "
                                   "modify and where they come from, or run a rule's contract tests.")
    rs = p.add_subparsers(dest="rules_command", metavar="ACTION")
    rs.required = True
    lp = rs.add_parser("list", help="name, reads, modifies (default, per model kind), source package")
    lp.add_argument("--json", action="store_true", help="print the table as JSON")
    lp.set_defaults(func=run_list)
    cp = rs.add_parser("check", help="run bioplastic.testing.check_rule on a rule")
    cp.add_argument("name", help="rule name, e.g. eprop or eprop+tcr_stp+freeze_in")
    cp.set_defaults(func=run_check)
    p.set_defaults(func=run_list, json=False)


def format_table(rows) -> str:
    head = ("name", "local", "reads", "modifies (default, per model)", "source")
    lines = [[r["name"], "yes" if r["local"] else "no", ", ".join(r["reads"]),
              "; ".join(f"{k}: {' '.join(v) if v else '(dynamics only)'}" for k, v in r["modifies"].items()),
              r["source"]] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line).rstrip() for line in lines]
    return "\n".join(out)


def run_list(args):
    from ..rules import rule_table

    rows = rule_table()
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def run_check(args):
    from ..testing import check_rule

    passed = check_rule(args.name)
    print(f"rule {args.name!r} passed {len(passed)} contract checks:")
    for name in passed:
        print(f"  {name}")
    return 0
