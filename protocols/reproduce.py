"""Reproduce: collect the verdicts of the paper's claims into REPRODUCTION.md.

For each protocol that measures a claim (SPEC 9: search_phase,
abrupt_learning, tcr_regimes, slow_dynamics, local_rules_tcr) the finished
outputs are read from the sibling folder ``<out>/../<name>/predictions.json``
(where ``bioplastic run <name>`` writes by default) or from ``<out>/<name>``
when their ``quick`` flag matches; otherwise the protocol is run into
``<out>/<name>``, so outputs made with the other setting are never replaced.
A protocol script that does not exist yet is reported as not run. The
protocols' testable predictions are listed below the claims.
The verdicts follow ``bioplastic.claims.VERDICT_RULE``.

Run: ``bioplastic run reproduce [--quick] [--seeds N] [--out DIR]``.
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

from bioplastic import protocol
from bioplastic.claims import CLAIM_PROTOCOLS, load_predictions, render_reproduction, resolve_claims, verdict_summary
from bioplastic.errors import UnknownNameError
from bioplastic.io.atomic import write_text
from bioplastic.io.specs import resolve
from bioplastic.protocol import script_main, write_json
from bioplastic.provenance import provenance

#: Protocols reproduce only reads (never runs), with the reason.
READ_ONLY: dict[str, str] = {}


def collect(name: str, out: Path, quick: bool, seeds):
    """(predictions or None, how they were obtained) for one claim protocol."""
    for folder in (out.parent / name, out / name):
        pred = load_predictions(folder)
        if pred is not None and bool(pred.get("quick")) == quick:
            return pred, f"read from {folder}"
    folder = out / name
    setting = "quick" if quick else "full"
    if name in READ_ONLY:
        return None, f"no {setting} outputs in {folder}; {READ_ONLY[name]}"
    try:
        resolve(name, "protocols", (".py",))
    except UnknownNameError:
        return None, f"not run: protocols/{name}.py does not exist yet"
    protocol.run_protocol(name, folder, quick=quick, seeds=seeds)
    return load_predictions(folder), f"run by reproduce into {folder}"


def main(out, quick=False, seeds=None):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    preds, status = {}, {}
    for name in CLAIM_PROTOCOLS:
        preds[name], status[name] = collect(name, out, quick, seeds)
    generated = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    text = render_reproduction(preds, quick=quick, generated=generated, status=status)
    result = {"protocol": "reproduce", "quick": quick, "generated": generated,
              "verdicts": verdict_summary(resolve_claims(preds)),
              "protocols": {name: {"status": status[name],
                                   "provenance": None if p is None else p.get("provenance"),
                                   "wall_seconds": None if p is None else p.get("wall_seconds")}
                            for name, p in preds.items()},
              "provenance": provenance(range(seeds) if seeds else []),
              "wall_seconds": time.perf_counter() - t0}
    write_text(out / "REPRODUCTION.md", text)
    write_json(out / "predictions.json", result)
    print(text)
    return result


if __name__ == "__main__":
    script_main(main, __doc__, "reproduce")
