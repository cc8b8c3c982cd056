"""Claims scoreboard: effect formatting, the verdict rule, REPRODUCTION.md and the reproduce protocol."""
import datetime
import json
import re

import pytest

import bioplastic.io.specs
import bioplastic.protocol
from bioplastic import claims
from bioplastic._version import __version__
from bioplastic.claims import (CLAIMS, VERDICT_RULE, cell_verdict, claim_verdict, format_effect, fraction_effect,
                               load_predictions, median_ci_effect, render_reproduction)
from bioplastic.errors import ConfigError
from bioplastic.provenance import provenance
from bioplastic.protocol import load_protocol


def ratio(median, lo, hi, n, n_censored=0, bound=None, all_censored=False):
    return {"kind": "ratio", "null": 1.0, "median": median, "ci95": [lo, hi], "n": n,
            "n_censored": n_censored, "bound": bound, "all_censored": all_censored}


def difference(median, lo, hi, n):
    return {"kind": "difference", "null": 0.0, "median": median, "ci95": [lo, hi], "n": n}


def pvalue(p, n, observed, expected):
    return {"kind": "pvalue", "p": p, "n": n, "observed": observed, "expected": expected}


def row(claim, protocol, direction, cells, **extra):
    return {"claim": claim, "protocol": protocol, "setting": f"{protocol} setting", "measure": "m",
            "direction": direction, "cells": [{"name": n, "effect": e} for n, e in cells], **extra}


PROVENANCE = {"version": "0.1.0", "commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False,
              "command": "bioplastic run x --quick", "timestamp": "2025-01-01T00:00:00+00:00",
              "seeds": list(range(10))}


def fixture_predictions(quick=True):
    """Hand-built predictions of the claim protocols."""
    return {
        "search_phase": {"protocol": "search_phase", "quick": quick, "provenance": PROVENANCE,
                         "wall_seconds": 12.4, "claims": {
                             "a": row("abrupt learning after a search plateau", "search_phase", "greater", [
                                 ("plateau then drop", fraction_effect(16, 20, 0.5)),
                                 ("plateau length", difference(40.0, 10.0, 80.0, 3))],
                                 notes="plateau length from 3 runs only")}},
        "abrupt_learning": {"protocol": "abrupt_learning", "quick": quick, "wall_seconds": 3.0, "claims": {
            "b": row("GR events precede the drop", "abrupt_learning", "greater", [
                ("lead times", pvalue(0.21, 24, 11, 9.1))])}},
        "tcr_regimes": {"protocol": "tcr_regimes", "quick": quick, "claims": {
            "c": row("TCR accelerates BPTT", "tcr_regimes", "greater", [
                ("flipflop / g=1.5", ratio(1.3, 1.05, 1.6, 10, n_censored=2, bound=">=")),
                ("flipflop / g=1.0", ratio(0.7, 0.5, 0.9, 10))]),
            "d": row("TCR enables learning in strongly connected networks", "tcr_regimes", "greater", [
                ("g=3", ratio(1.0, 0.92, 1.05, 12)),
                ("g=5", ratio(1.0, 1.0, 1.0, 10, n_censored=10, all_censored=True))]),
            "e": row("TCR helps LSTMs in the search phase", "tcr_regimes", "greater", [
                ("lstm", ratio(1.2, 0.9, 1.5, 4))])}},
        "slow_dynamics": {"protocol": "slow_dynamics", "quick": quick, "claims": {
            "f": row("TCR promotes slow and ramping activity", "slow_dynamics", "greater", [
                ("timescale", difference(0.5, -0.2, 1.3, 12))])}},
        "local_rules_tcr": {"protocol": "local_rules_tcr", "quick": quick, "claims": {
            "g": row("TCR accelerates bio-plausible training", "local_rules_tcr", "greater", [
                ("eprop", ratio(1.5, 1.2, 1.9, 10))]),
            "h": row("freeze-in collapses to trivial attractors without noise or a controller", "local_rules_tcr",
                     "greater", [("eta=1", fraction_effect(0, 10, 0.05)), ("pooled", fraction_effect(0, 120, 0.05))])},
            "predictions": {
                "block": {"text": "blocking STP changes the search phase by X", "effect": difference(-20.0, -40.0, 5.0, 10)},
                "tau": {"text": "tau_s range", "fastest": 30.0, "range": [10.0, 100.0], "per_tau_s": {}}}},
    }


# Per claim: (verdict, text the table's effect column holds, text of the verdict column).
EXPECTED = {
    "a": ("reproduced", "plateau then drop: 16/20 = 0.80 [0.58, 0.92]", "**reproduced**"),
    "b": ("not reproduced", "lead times: p = 0.210 (11 of 24 vs 9.1 expected)", "**not reproduced**"),
    "c": ("inconclusive", "flipflop / g=1.5: >= 1.30 [1.05, 1.60] (n=10, 2 censored)", "regime-dependent"),
    "d": ("not reproduced", "g=3: 1.00 [0.92, 1.05] (n=12)", "**not reproduced**"),
    "e": ("inconclusive", "lstm: 1.20, n too small (n=4)", "no usable cell"),
    "f": ("inconclusive", "timescale: 0.50 [-0.20, 1.30] (n=12)", "no cell supports or contradicts"),
    "g": ("reproduced", "eprop: 1.50 [1.20, 1.90] (n=10)", "**reproduced**"),
    "h": ("not reproduced", "eta=1: " + format_effect(fraction_effect(0, 10, 0.05)), "**not reproduced**"),
}


def table_rows(text):
    """Claim rows of the scoreboard table, as lists of cells."""
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in rows]


# ----------------------------------------------------------------------------- formatting

@pytest.mark.parametrize("effect, text", [
    (ratio(1.42, 1.1, 2.0, 10, n_censored=3, bound=">="), ">= 1.42 [1.10, 2.00] (n=10, 3 censored)"),
    (ratio(0.8, 0.6, 0.95, 10, n_censored=1, bound="<="), "<= 0.80 [0.60, 0.95] (n=10, 1 censored)"),
    (ratio(1.3, 1.05, 1.6, 10), "1.30 [1.05, 1.60] (n=10)"),
    (ratio(1.0, 1.0, 1.0, 10, n_censored=10, all_censored=True), "all censored (n=10)"),
    (ratio(1.2, 0.9, 1.5, 3), "1.20, n too small (n=3)"),
    (ratio(1.2, 0.9, 1.5, 3, n_censored=1, bound=">="), ">= 1.20, n too small (n=3), 1 censored"),
    (ratio(12.34, 10.0, 15.0, 10), "12.3 [10.0, 15.0] (n=10)"),
    (fraction_effect(14, 20, 0.5), "14/20 = 0.70 [0.48, 0.85]"),
    (fraction_effect(3, 4, 0.5), "3/4 = 0.75, n too small (n=4)"),
    (difference(3.2, 1.0, 5.0, 10), "3.20 [1.00, 5.00] (n=10)"),
    (difference(1250.0, 900.0, 1600.0, 10), "1250 [900, 1600] (n=10)"),
    (difference(0.004, -0.001, 0.009, 10), "0.0040 [-0.0010, 0.0090] (n=10)"),
    (difference(None, None, None, 0), "no finite value (n=0)"),
    (pvalue(0.003, 24, 15, 9.1), "p = 0.003 (15 of 24 vs 9.1 expected)"),
    (pvalue(0.0001, 24, 20, 9.1), "p < 0.001 (20 of 24 vs 9.1 expected)"),
    (None, "not measured"),
    ({"status": "not measured"}, "not measured"),
])
def test_format_effect(effect, text):
    assert format_effect(effect) == text


def test_format_effect_errors():
    with pytest.raises(ConfigError, match="unknown effect kind 'odds'"):
        format_effect({"kind": "odds"})
    with pytest.raises(ConfigError, match=r"lacks key\(s\) \['k'\]"):
        format_effect({"kind": "fraction", "n": 3})
    with pytest.raises(ConfigError, match="bound must be"):
        format_effect(ratio(1.2, 1.0, 1.4, 10, bound=">"))


def test_median_ci_effect():
    e = median_ci_effect([1.2, 1.4, 1.1, 1.3, 1.5, float("nan")], kind="ratio", null=1.0, n_censored=1,
                         bound=">=")
    assert e["median"] == pytest.approx(1.3) and e["n"] == 5 and e["n_censored"] == 1 and e["bound"] == ">="
    assert e["ci95"][0] <= 1.3 <= e["ci95"][1] and not e["all_censored"]
    assert median_ci_effect([1.0, 1.0], kind="ratio", null=1.0, n_censored=2)["all_censored"]
    d = median_ci_effect([1.0, 2.0, 3.0], kind="difference", null=0.0)
    assert d == {"kind": "difference", "null": 0.0, "median": 2.0, "ci95": d["ci95"], "n": 3}
    assert median_ci_effect([1.0, 2.0], kind="difference", null=0.0, seed=3) == \
        median_ci_effect([1.0, 2.0], kind="difference", null=0.0, seed=3)
    with pytest.raises(ConfigError, match="no censoring"):
        median_ci_effect([1.0], kind="difference", null=0.0, n_censored=1)
    with pytest.raises(ConfigError, match="kind must be"):
        median_ci_effect([1.0], kind="fraction", null=0.5)
    with pytest.raises(ConfigError, match="n_censored=3"):
        median_ci_effect([1.0, 2.0], kind="ratio", null=1.0, n_censored=3)


def test_fraction_effect():
    e = fraction_effect(14, 20, 0.5)
    assert (e["kind"], e["k"], e["n"], e["null"]) == ("fraction", 14, 20, 0.5)
    assert e["ci95"][0] == pytest.approx(0.481, abs=1e-3) and e["ci95"][1] == pytest.approx(0.855, abs=1e-3)
    with pytest.raises(ConfigError, match="0 <= k <= n"):
        fraction_effect(5, 4, 0.5)


# ----------------------------------------------------------------------------- verdicts

@pytest.mark.parametrize("effect, direction, verdict", [
    (ratio(1.3, 1.05, 1.6, 10), "greater", "supports"),
    (ratio(0.7, 0.5, 0.9, 10), "greater", "contradicts"),
    (ratio(1.1, 0.9, 1.4, 10), "greater", "neutral"),
    (ratio(1.0, 0.92, 1.05, 12), "greater", "contradicts"),    # rules out a practical speed-up
    (ratio(1.0, 0.92, 1.12, 12), "greater", "neutral"),
    (ratio(0.8, 0.6, 0.95, 10), "less", "supports"),
    (ratio(1.0, 0.95, 1.1, 10), "less", "contradicts"),        # lo > 1/1.1
    (ratio(1.0, 0.85, 1.1, 10), "less", "neutral"),
    (ratio(1.3, 1.05, 1.6, 9), "greater", "too few"),
    (ratio(1.0, 1.0, 1.0, 10, n_censored=10, all_censored=True), "greater", "too few"),
    (ratio(0.7, 0.5, 0.9, 10, n_censored=4, bound=">="), "greater", "neutral"),   # a lower bound can't contradict
    (ratio(1.3, 1.05, 1.6, 10, n_censored=4, bound=">="), "greater", "supports"),
    (ratio(1.3, 1.05, 1.6, 10, n_censored=4, bound="<="), "greater", "neutral"),  # an upper bound can't support
    (ratio(0.7, 0.5, 0.9, 10, n_censored=4, bound="<="), "greater", "contradicts"),
    (ratio(0.7, 0.5, 0.9, 10, n_censored=4, bound="<="), "less", "supports"),
    (ratio(1.3, 1.05, 1.6, 10, n_censored=4, bound="<="), "less", "neutral"),
    (difference(3.2, 1.0, 5.0, 10), "greater", "supports"),
    (difference(3.2, 1.0, 5.0, 10), "less", "contradicts"),
    (difference(0.02, -0.1, 0.09, 10), "greater", "neutral"),  # no practical margin for differences
    (fraction_effect(16, 20, 0.5), "greater", "supports"),
    (fraction_effect(4, 20, 0.5), "greater", "contradicts"),
    (fraction_effect(12, 20, 0.5), "greater", "neutral"),
    (fraction_effect(8, 8, 0.5), "greater", "too few"),
    (pvalue(0.003, 24, 15, 9.1), "greater", "supports"),
    (pvalue(0.3, 24, 10, 9.1), "greater", "neutral"),
    (pvalue(0.003, 19, 15, 9.1), "greater", "too few"),
    (None, "greater", "too few"),
])
def test_cell_verdict(effect, direction, verdict):
    assert cell_verdict(effect, direction) == verdict


def test_cell_verdict_bad_direction():
    with pytest.raises(ConfigError, match="direction must be one of"):
        cell_verdict(ratio(1.3, 1.05, 1.6, 10), "up")


def test_claim_verdicts_of_fixture_rows():
    for name, pred in fixture_predictions().items():
        for cid, r in pred["claims"].items():
            verdict, why = claim_verdict(r)
            assert verdict == EXPECTED[cid][0], (cid, why)
    c = fixture_predictions()["tcr_regimes"]["claims"]["c"]
    assert claim_verdict(c)[1] == ("regime-dependent: supported in 1 of 2 cells (flipflop / g=1.5), "
                                   "contradicted in 1 (flipflop / g=1.0)")


def test_claim_verdict_special_rows():
    assert claim_verdict({"status": "not measured", "reason": "needs LSTMs"}) == \
        ("inconclusive", "not measured: needs LSTMs")
    assert claim_verdict({"direction": "greater", "cells": []}) == ("inconclusive", "no cells measured")
    too_few_p = row("x", "p", "greater", [("t", pvalue(0.5, 12, 5, 4.0))])
    assert claim_verdict(too_few_p)[0] == "inconclusive"
    two_p = row("x", "p", "greater", [("t1", pvalue(0.5, 30, 5, 4.0)), ("t2", pvalue(0.01, 30, 9, 4.0))])
    assert claim_verdict(two_p)[0] == "reproduced"
    unmeasured_cell = {"direction": "greater", "cells": [{"name": "x", "status": "not measured"}]}
    assert claim_verdict(unmeasured_cell)[0] == "inconclusive"
    with pytest.raises(ConfigError, match="'direction' must be one of"):
        claim_verdict({"claim": "x", "cells": [{"name": "c", "effect": ratio(1.3, 1.05, 1.6, 10)}]})


def test_verdict_rule_states_the_rule():
    for phrase in ("n < 10", "n < 20", "strictly on the paper's side", "within 10%", "p < 0.05",
                   "cannot contradict", "**reproduced**", "**not reproduced**", "**inconclusive**",
                   "regime-dependent", "2.5%", "n >= 5"):
        assert phrase in VERDICT_RULE
    assert claims.PRACTICAL_MARGIN == 0.10
    assert [c.id for c in CLAIMS] == list("abcdefgh")
    assert [c.protocol for c in CLAIMS] == ["search_phase", "abrupt_learning", "tcr_regimes", "tcr_regimes",
                                            "tcr_regimes", "slow_dynamics", "local_rules_tcr", "local_rules_tcr"]


# ----------------------------------------------------------------------------- scoreboard

def test_render_reproduction_table():
    text = render_reproduction(fixture_predictions(), quick=True, generated="2025-01-01T00:00:00+00:00")
    assert text.startswith("# Reproduction of Haputhanthri et al. 2025")
    assert "**Quick settings.**" in text and VERDICT_RULE in text
    rows = table_rows(text)
    assert len(rows) == 8
    for cells, c in zip(rows, CLAIMS):
        verdict, effect, verdict_text = EXPECTED[c.id]
        assert cells[0] == f"({c.id}) {c.text}"
        assert cells[2] == effect, c.id
        assert cells[4].startswith(f"**{verdict}**") and verdict_text in cells[4], c.id
    assert rows[0][3] == "plateau then drop (1 of 2 cells)"
    assert rows[2][3] == "flipflop / g=1.5 (1 of 2 cells); contradicted in 1 (flipflop / g=1.0)"
    assert rows[1][1] == "abrupt_learning: abrupt_learning setting"
    # every cell of every claim is listed, with the row's notes
    assert "- plateau length: 40.0, n too small (n=3): too few" in text
    assert "- g=5: all censored (n=10): too few" in text
    assert "Notes: plateau length from 3 runs only" in text
    # provenance
    assert ("- **search_phase**: quick settings; bioplastic 0.1.0; commit 0123456789ab; command "
            "`bioplastic run x --quick`; at 2025-01-01T00:00:00+00:00; seeds 0..9 (10); wall time 12 s.") in text
    assert "- **abrupt_learning**: quick settings; no provenance recorded; wall time 3 s." in text
    assert "- **local_rules_tcr**: quick settings; no provenance recorded; wall time not recorded." in text


def test_render_reproduction_missing_protocol_and_full_settings():
    preds = fixture_predictions(quick=False)
    del preds["slow_dynamics"]
    preds["local_rules_tcr"] = {"quick": False, "claims": {"g": row(
        "TCR accelerates bio-plausible training", "local_rules_tcr", "greater",
        [("e-prop", ratio(1.5, 1.2, 1.9, 10))])}}
    text = render_reproduction(preds, quick=False, generated="now", status={"slow_dynamics": "not run: no script"})
    assert "Quick settings" not in text
    rows = {r[0][1]: r for r in table_rows(text)}
    assert rows["f"][4] == "**inconclusive**: protocol slow_dynamics has not been run"
    assert rows["g"][4] == "**reproduced**" and rows["g"][2] == "e-prop: 1.50 [1.20, 1.90] (n=10)"
    assert rows["h"][4] == "**inconclusive**: protocol local_rules_tcr did not report claim (h)"
    assert "- **slow_dynamics**: not run: no script." in text
    # a protocol that ran but did not report a claim
    preds["tcr_regimes"]["claims"].pop("e")
    rows = {r[0][1]: r for r in table_rows(render_reproduction(preds, quick=False, generated="now"))}
    assert rows["e"][4] == "**inconclusive**: protocol tcr_regimes did not report claim (e)"


def test_load_predictions(tmp_path):
    assert load_predictions(tmp_path) is None
    (tmp_path / "predictions.json").write_text('{"quick": true')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_predictions(tmp_path)
    (tmp_path / "predictions.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_predictions(tmp_path)
    (tmp_path / "predictions.json").write_text('{"quick": true}')
    assert load_predictions(tmp_path) == {"quick": True}


# ----------------------------------------------------------------------------- provenance

def test_provenance_in_this_checkout():
    p = provenance([0, 1, 2])
    assert re.fullmatch(r"[0-9a-f]{40}", p["commit"]) and isinstance(p["dirty"], bool)
    assert p["seeds"] == [0, 1, 2] and p["version"] == __version__
    stamp = datetime.datetime.fromisoformat(p["timestamp"])
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert isinstance(p["command"], str) and provenance(None)["seeds"] == []
    with pytest.raises(ConfigError, match="seeds must be a list of ints"):
        provenance(5)


def test_provenance_outside_git(tmp_path, monkeypatch):
    assert bioplastic.provenance._git_state(tmp_path) == (None, None)

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(bioplastic.provenance.subprocess, "run", no_git)
    p = provenance([1])
    assert p["commit"] is None and p["dirty"] is None


# ----------------------------------------------------------------------------- the reproduce protocol

def write_fixtures(runs, preds):
    for name, pred in preds.items():
        (runs / name).mkdir(parents=True, exist_ok=True)
        (runs / name / "predictions.json").write_text(json.dumps(pred))


def test_reproduce_reads_outputs_without_running(tmp_path, monkeypatch, capsys):
    reproduce = load_protocol("reproduce")

    def no_run(*args, **kwargs):
        raise AssertionError(f"run_protocol called with {args}")

    monkeypatch.setattr(bioplastic.protocol, "run_protocol", no_run)
    runs = tmp_path / "runs"
    write_fixtures(runs, fixture_predictions(quick=True))
    out = runs / "reproduce"
    result = reproduce.main(out, quick=True)
    text = (out / "REPRODUCTION.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = table_rows(text)
    assert len(rows) == 8
    for cells, c in zip(rows, CLAIMS):
        assert cells[2] == EXPECTED[c.id][1] and EXPECTED[c.id][2] in cells[4], c.id
    assert "## Predictions for experiments" in text
    assert "| local_rules_tcr | blocking STP changes the search phase by X | -20.0 [-40.0, 5.0] (n=10) |" in text
    assert "| local_rules_tcr | tau_s range | fastest at 30; within its 95% interval: 10 to 100 |" in text
    saved = json.loads((out / "predictions.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert {k: v["verdict"] for k, v in saved["verdicts"].items()} == {k: v[0] for k, v in EXPECTED.items()}
    assert saved["verdicts"]["g"]["supporting"] == ["eprop"]
    assert saved["protocols"]["search_phase"]["provenance"] == PROVENANCE
    assert saved["protocols"]["search_phase"]["status"] == f"read from {runs / 'search_phase'}"
    assert saved["quick"] is True and re.fullmatch(r"[0-9a-f]{40}", saved["provenance"]["commit"])


def test_reproduce_runs_stale_and_reports_missing(tmp_path, monkeypatch):
    reproduce = load_protocol("reproduce")
    scripts = tmp_path / "protocols"
    scripts.mkdir()
    (scripts / "abrupt_learning.py").write_text("def main(out, quick=False, seeds=None):\n    return {}\n")
    monkeypatch.setattr(bioplastic.io.specs, "search_dirs", lambda kind: [scripts])
    runs = tmp_path / "runs"
    fresh = fixture_predictions(quick=True)
    stale = fixture_predictions(quick=False)
    stale["local_rules_tcr"] = {"quick": False, "claims": {"g": row(
        "TCR accelerates bio-plausible training", "local_rules_tcr", "greater",
        [("e-prop", ratio(1.5, 1.2, 1.9, 10))])}}
    write_fixtures(runs, {"abrupt_learning": stale["abrupt_learning"], "tcr_regimes": fresh["tcr_regimes"],
                          "slow_dynamics": fresh["slow_dynamics"], "local_rules_tcr": stale["local_rules_tcr"]})
    calls = []

    def fake_run(name, out, *, quick, seeds):
        calls.append((name, out, quick, seeds))
        write_fixtures(out.parent, {name: fresh[name]})
        return fresh[name]

    stale_file = runs / "abrupt_learning" / "predictions.json"
    stale_text = stale_file.read_text()

    monkeypatch.setattr(bioplastic.protocol, "run_protocol", fake_run)
    result = reproduce.main(runs / "reproduce", quick=True, seeds=2)
    # the stale (full) outputs are not overwritten: the quick run goes into reproduce's own folder
    assert calls == [("abrupt_learning", runs / "reproduce" / "abrupt_learning", True, 2)]
    assert stale_file.read_text() == stale_text
    prot = result["protocols"]
    assert prot["search_phase"]["status"] == "not run: protocols/search_phase.py does not exist yet"
    assert prot["abrupt_learning"]["status"] == f"run by reproduce into {runs / 'reproduce' / 'abrupt_learning'}"
    # only the full outputs exist, and (here) no script: a quick scoreboard does not use the full ones
    assert prot["local_rules_tcr"]["status"] == "not run: protocols/local_rules_tcr.py does not exist yet"
    v = result["verdicts"]
    assert v["a"]["explanation"] == "protocol search_phase has not been run"
    assert v["b"]["verdict"] == "not reproduced"
    assert v["g"]["explanation"] == "protocol local_rules_tcr has not been run"
    assert result["provenance"]["seeds"] == [0, 1]
    text = (runs / "reproduce" / "REPRODUCTION.md").read_text()
    assert "- **search_phase**: not run: protocols/search_phase.py does not exist yet." in text


def test_existence_claim_holds_where_any_cell_supports():
    from bioplastic.claims import claim_verdict, fraction_effect

    row = {"direction": "greater", "scope": "exists", "cells": [
        {"name": "sgd", "effect": fraction_effect(10, 10, 0.5)},
        {"name": "adam", "effect": fraction_effect(0, 10, 0.5)}]}
    verdict, why = claim_verdict(row)
    assert verdict == "reproduced" and "absent (contradicted) in 1 (adam)" in why
    row["cells"] = row["cells"][1:]
    assert claim_verdict(row)[0] == "not reproduced"
    row.pop("scope")
    row["cells"] = [{"name": "sgd", "effect": fraction_effect(10, 10, 0.5)},
                    {"name": "adam", "effect": fraction_effect(0, 10, 0.5)}]
    assert claim_verdict(row)[0] == "inconclusive"


def test_paired_speedup_censoring_makes_bounds():
    from bioplastic.claims import paired_speedup_effect

    # no censoring: plain median of the ratios
    e = paired_speedup_effect([200, 400, 600, 800, 1000], [100, 400, 300, 400, 500], 2000)
    assert e["median"] == 2.0 and e["bound"] is None and e["n"] == 5 and e["n_censored"] == 0
    # baseline censored, TCR solved: lower bounds; median becomes ">="
    e = paired_speedup_effect([None, None, None, 400, 500], [500, 400, 250, 400, 500], 2000)
    assert e["bound"] == ">=" and e["n_censored"] == 3 and e["median"] == 4.0
    # TCR censored: upper bounds
    e = paired_speedup_effect([100, 200, 300], [None, None, 300], 1000)
    assert e["bound"] == "<=" and e["median"] == pytest.approx(0.2)
    # both kinds: neither bound; both censored: left out
    e = paired_speedup_effect([None, 100, None, 300], [100, None, None, 300], 1000)
    assert e["bound"] is None and e["n"] == 3 and e["n_both_censored"] == 1
    e = paired_speedup_effect([None, None], [None, None], 1000)
    assert e["all_censored"] and e["n"] == 0
    with pytest.raises(ConfigError, match="pairs differ"):
        paired_speedup_effect([1, 2], [1], 10)


def test_paired_mean_difference_and_censored_median():
    from bioplastic.claims import format_effect, paired_mean_difference_effect
    from bioplastic.stats import censored_median

    e = paired_mean_difference_effect([0] * 10, [1] * 6 + [0] * 4)
    assert e["median"] == 0.6 and e["ci95"][0] > 0 and format_effect(e).startswith("mean 0.6")
    m = censored_median([100, 200, 300, None, None], 1000)
    assert m["median"] == 300 and m["bound"] is None and m["n_censored"] == 2
    m = censored_median([100, None, None, None], 1000)
    assert m["median"] == 1000 and m["bound"] == ">=" and not m["all_censored"]
    assert censored_median([None, None], 50)["all_censored"]


def test_difference_with_a_practical_margin():
    from bioplastic.claims import cell_verdict, paired_mean_difference_effect

    none_helped = paired_mean_difference_effect([0] * 10, [0] * 10, margin=0.2)
    assert none_helped["ci95"] == [0.0, 0.0]
    assert cell_verdict(none_helped, "greater") == "contradicts"
    assert cell_verdict(paired_mean_difference_effect([0] * 10, [0] * 10), "greater") == "neutral"
    some = paired_mean_difference_effect([0] * 10, [1] * 4 + [0] * 6, margin=0.2)
    assert cell_verdict(some, "greater") == "supports"
