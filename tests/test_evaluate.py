"""egr.evaluate on summaries built from real DockQ values, against numbers computed by hand.

The decoys' DockQ values are real: DockQ 2.1.3 labels of ``shared/data/haddock`` and ``bm5`` (targets
2OUL, 1AK4, 2X9A; see tests/data/pairs/labels.csv for the rows bundled here). The refined DockQ and the
QA scores are made up so that every table cell has a known value.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from egr.evaluate import (
    OVERALL,
    evaluate,
    evaluate_frame,
    parse_rankers,
    read_summary,
    to_markdown,
    write_evaluation,
)

# decoy -> (target, DockQ of the decoy): real labels
REAL_DOCKQ = {
    "2OUL_1": ("2OUL", 0.8111),
    "2OUL_10": ("2OUL", 0.6765),
    "2OUL_2": ("2OUL", 0.8793),
    "2OUL_3": ("2OUL", 0.0253),
    "2OUL_4": ("2OUL", 0.0254),
    "2OUL_5": ("2OUL", 0.0080),
    "2OUL_6": ("2OUL", 0.0075),
    "2OUL_7": ("2OUL", 0.0147),
    "2OUL_8": ("2OUL", 0.0332),
    "2OUL_9": ("2OUL", 0.6872),
    "1AK4_cm-it0_745": ("1AK4", 0.0114),
    "1AK4_cm-itw_238w": ("1AK4", 0.0123),
    "1AK4_ranair-it0_5257": ("1AK4", 0.0111),
    "1AK4_ti5-itw_212w": ("1AK4", 0.5550),
    "1AK4_ti5-itw_312w": ("1AK4", 0.5489),
    "2X9A_unbound": ("2X9A", 0.7463),
}
# Made-up EGR scores. 2OUL by mean_plddt: 2OUL_3, 2OUL_1, 2OUL_9 first; by interface_plddt: 2OUL_10, 2OUL_2, 2OUL_5.
MEAN_PLDDT = {
    "2OUL_1": 0.80,
    "2OUL_10": 0.50,
    "2OUL_2": 0.40,
    "2OUL_3": 0.90,
    "2OUL_4": 0.30,
    "2OUL_5": 0.20,
    "2OUL_6": 0.10,
    "2OUL_7": 0.15,
    "2OUL_8": 0.25,
    "2OUL_9": 0.70,
    "1AK4_cm-it0_745": 0.60,
    "1AK4_cm-itw_238w": 0.30,
    "1AK4_ranair-it0_5257": 0.20,
    "1AK4_ti5-itw_212w": 0.50,
    "1AK4_ti5-itw_312w": 0.70,
    "2X9A_unbound": 0.65,
}
INTERFACE_PLDDT = {
    "2OUL_1": 0.10,
    "2OUL_10": 0.90,
    "2OUL_2": 0.80,
    "2OUL_3": 0.20,
    "2OUL_4": 0.30,
    "2OUL_5": 0.70,
    "2OUL_6": 0.40,
    "2OUL_7": 0.50,
    "2OUL_8": 0.60,
    "2OUL_9": 0.05,
    "1AK4_cm-it0_745": 0.30,
    "1AK4_cm-itw_238w": 0.20,
    "1AK4_ranair-it0_5257": 0.10,
    "1AK4_ti5-itw_212w": None,
    "1AK4_ti5-itw_312w": 0.25,
    "2X9A_unbound": 0.60,
}
# EGR-refined DockQ (None: not scored) and ΔiRMSD, made up; 2OUL has no refined scores at all.
DOCKQ_EGR = {
    "1AK4_cm-it0_745": 0.0120,
    "1AK4_cm-itw_238w": 0.0123,
    "1AK4_ranair-it0_5257": 0.0100,
    "1AK4_ti5-itw_212w": 0.5661,
    "1AK4_ti5-itw_312w": None,
    "2X9A_unbound": 0.7400,
}
DELTA_IRMSD_EGR = {"1AK4_cm-it0_745": -0.1, "1AK4_ranair-it0_5257": 0.2, "1AK4_ti5-itw_212w": -0.3}


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def summary_rows() -> list[dict[str, str]]:
    """Rows as ``egr run`` writes them: every value a string, empty = not computable."""
    rows = []
    for decoy, (target, dockq) in REAL_DOCKQ.items():
        egr = DOCKQ_EGR.get(decoy)
        delta = None if egr is None else round(egr - dockq, 4)
        rows.append(
            {
                "id": decoy,
                "input": f"decoys/{decoy}.pdb",
                "status": "ok",
                "reason": "",
                "target": target,
                "mean_plddt": _cell(MEAN_PLDDT[decoy]),
                "interface_plddt": _cell(INTERFACE_PLDDT[decoy]),
                "seconds_total": "2.0",
                "dockq_decoy": _cell(dockq),
                "dockq_egr": _cell(egr),
                "delta_dockq_egr": _cell(delta),
                "delta_irmsd_egr": _cell(DELTA_IRMSD_EGR.get(decoy)),
                # OpenMM was asked for but not installed: a status and a reason, no score column (as egr run writes it)
                "status_openmm": "skipped",
                "reason_openmm": "OpenMM not installed (pip install 'egr-nf[relax]')",
            }
        )
    # a decoy that failed before scoring: it has no DockQ and must not enter any table
    rows.append(
        {
            "id": "1AK4_broken",
            "input": "decoys/1AK4_broken.pdb",
            "status": "failed",
            "reason": "decoys/1AK4_broken.pdb: no ATOM records",
            "target": "1AK4",
        }
    )
    return rows


def write_tsv(folder: Path, rows: list[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "summary.tsv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    return write_tsv(tmp_path / "results", summary_rows())


def _row(table: pd.DataFrame, **keys: str) -> pd.Series:
    selected = table
    for key, value in keys.items():
        selected = selected[selected[key] == value]
    assert len(selected) == 1, keys
    return selected.iloc[0]


def test_read_summary_types_columns(results: Path) -> None:
    frame = read_summary(results)
    assert frame["dockq_decoy"].dtype == float and frame["status_openmm"].dtype == object
    assert math.isnan(frame.loc[frame["id"] == "1AK4_ti5-itw_312w", "dockq_egr"].iloc[0])  # empty stays missing
    assert frame.loc[frame["id"] == "1AK4_broken", "reason"].iloc[0].endswith("no ATOM records")


def test_refinement_per_target_and_overall(results: Path) -> None:
    table = evaluate(results).refinement
    ak4 = _row(table, target="1AK4", method="egr")
    # 1AK4: Δ = +0.0006, 0, -0.0011, +0.0111 (312w not scored) -> 2 of 4 improved
    assert ak4["n"] == 4 and ak4["n_improved"] == 2
    assert ak4["delta_dockq"] == pytest.approx((0.0006 + 0.0 - 0.0011 + 0.0111) / 4, abs=1e-9)
    assert ak4["fi_dockq"] == pytest.approx(50.0)
    assert ak4["api_dockq"] == pytest.approx(100 * (0.0006 / 0.0114 + 0.0111 / 0.5550) / 2, rel=1e-3)  # 3.63 %
    assert ak4["delta_irmsd"] == pytest.approx((-0.1 + 0.2 - 0.3) / 3)  # mean over the 3 given, not /4
    x9a = _row(table, target="2X9A", method="egr")
    assert x9a["n"] == 1 and x9a["fi_dockq"] == 0.0 and math.isnan(x9a["api_dockq"])  # no improved decoy: empty
    overall = _row(table, target=OVERALL, method="egr")
    assert overall["n"] == 5 and overall["fi_dockq"] == pytest.approx(40.0)
    assert overall["delta_dockq"] == pytest.approx((0.0106 - 0.0063) / 5, abs=1e-9)
    assert overall["api_dockq"] == pytest.approx(ak4["api_dockq"])
    assert overall["seconds"] == pytest.approx(2.0)  # EGR's time is seconds_total without a seconds_egr column


def test_missing_scores_stay_empty_never_zero(results: Path) -> None:
    table = evaluate(results).refinement
    oul = _row(table, target="2OUL", method="egr")  # 2OUL: no refined score at all
    assert oul["n"] == 0 and oul["n_improved"] == 0
    assert all(math.isnan(oul[c]) for c in ("delta_dockq", "delta_irmsd", "fi_dockq", "api_dockq"))
    openmm = _row(table, target=OVERALL, method="openmm")  # skipped everywhere
    assert openmm["n"] == 0 and math.isnan(openmm["fi_dockq"]) and math.isnan(openmm["delta_dockq"])
    assert any("OpenMM relax: 16 skipped" in note and "not installed" in note for note in evaluate(results).notes)


def test_delta_recomputed_when_the_column_is_absent(results: Path) -> None:
    frame = read_summary(results).drop(columns=["delta_dockq_egr"])
    recomputed = _row(evaluate_frame(frame).refinement, target="1AK4", method="egr")
    assert recomputed["fi_dockq"] == pytest.approx(50.0) and recomputed["n"] == 4


def test_hit_rates_and_ranking_loss_top3(results: Path) -> None:
    qa = evaluate(results, top_n=3).qa
    egr = _row(qa, target="2OUL", ranker="mean_plddt")  # top 3: 0.0253, 0.8111, 0.6872
    assert (egr["hits_acceptable"], egr["hits_medium"], egr["hits_high"]) == (2, 2, 1)
    assert egr["ranking_loss"] == pytest.approx(0.8793 - 0.0253)
    iface = _row(qa, target="2OUL", ranker="interface_plddt")  # top 3: 0.6765, 0.8793, 0.0080
    assert (iface["hits_acceptable"], iface["hits_medium"], iface["hits_high"]) == (2, 2, 1)
    assert iface["ranking_loss"] == pytest.approx(0.8793 - 0.6765)
    order = _row(qa, target="2OUL", ranker="input_order")  # 0.8111, 0.6765, 0.8793
    assert (order["hits_acceptable"], order["hits_high"], order["ranking_loss"]) == (3, 2, pytest.approx(0.0682))
    oracle = _row(qa, target="2OUL", ranker="oracle")
    assert (oracle["hits_acceptable"], oracle["hits_high"], oracle["ranking_loss"]) == (3, 2, 0.0)
    random = _row(qa, target="2OUL", ranker="random")  # expected: 3 × 4/10 acceptable, 3 × 2/10 high
    assert random["hits_acceptable"] == pytest.approx(1.2) and random["hits_high"] == pytest.approx(0.6)
    assert random["ranking_loss"] == pytest.approx(0.8793 - 3.1682 / 10)
    ak4 = _row(qa, target="1AK4", ranker="mean_plddt")  # 312w (0.5489) first; 745, 212w follow
    assert ak4["n_decoys"] == 5  # the failed decoy is not a candidate
    assert (ak4["hits_acceptable"], ak4["hits_medium"], ak4["hits_high"]) == (2, 2, 0)
    assert ak4["ranking_loss"] == pytest.approx(0.5550 - 0.5489)
    # the best 1AK4 decoy has no interface score: it ranks last, after every scored decoy
    unscored_last = _row(qa, target="1AK4", ranker="interface_plddt")
    assert unscored_last["hits_acceptable"] == 1 and unscored_last["ranking_loss"] == pytest.approx(0.5550 - 0.0114)


def test_qa_summary_over_targets(results: Path) -> None:
    summary = evaluate(results, top_n=3).qa_summary.set_index("ranker")
    egr = summary.loc["mean_plddt"]
    assert egr["n_targets"] == 2  # 2OUL and 1AK4; 2X9A has one decoy
    assert (egr["targets_acceptable"], egr["targets_medium"], egr["targets_high"]) == (2, 2, 1)
    assert egr["ranking_loss_mean"] == pytest.approx((0.8540 + 0.0061) / 2)
    assert egr["ranking_loss_std"] == pytest.approx(abs(0.8540 - 0.0061) / math.sqrt(2))
    # random: P(≥ 1 acceptable in a random top 3) = 1 − C(6,3)/C(10,3) for 2OUL, 1 − C(3,3)/C(5,3) for 1AK4
    assert summary.loc["random", "targets_acceptable"] == pytest.approx((1 - 20 / 120) + (1 - 1 / 10))
    assert summary.loc["random", "targets_high"] == pytest.approx(1 - 56 / 120)


def test_top10_default_includes_every_decoy_of_a_small_target(results: Path) -> None:
    ev = evaluate(results)
    oul = _row(ev.qa, target="2OUL", ranker="mean_plddt")
    assert (oul["top_n"], oul["hits_acceptable"], oul["hits_medium"], oul["hits_high"]) == (10, 4, 4, 2)
    assert "| 2OUL | 10 | 4/4/2 |" in to_markdown(ev)


def test_single_decoy_target_is_left_empty(results: Path) -> None:
    ev = evaluate(results)
    rows = ev.qa[ev.qa["target"] == "2X9A"]
    assert len(rows) == len(ev.rankers)
    assert rows[["hits_acceptable", "top1_dockq", "ranking_loss"]].isna().all().all()
    assert (rows["note"] == "single decoy: no ranking").all()
    assert any("2X9A" in note and "single" in note for note in ev.notes)
    assert "single decoy: no ranking" in to_markdown(ev)


def test_extra_score_column_lower_is_better(results: Path) -> None:
    frame = read_summary(results)
    # an energy-like score: lowest for 2OUL_2, the best decoy
    frame["energy"] = np.where(
        frame["id"] == "2OUL_2", -90.0, np.where(frame["id"].str.startswith("2OUL"), -10.0, np.nan)
    )
    qa = evaluate_frame(frame, ["energy:lower"], top_n=3).qa
    energy = _row(qa, target="2OUL", ranker="energy")
    assert energy["ranking_loss"] == 0.0
    assert _row(qa, target="1AK4", ranker="energy")["note"] == "no energy values"
    assert math.isnan(_row(qa, target="1AK4", ranker="energy")["ranking_loss"])
    with pytest.raises(ValueError, match="NAME:lower"):
        parse_rankers(["energy:sideways"])
    with pytest.raises(ValueError, match="not in summary"):
        evaluate_frame(frame, ["no_such_column"])


def test_written_files(results: Path, tmp_path: Path) -> None:
    tsv, md = write_evaluation(evaluate(results), tmp_path / "out")
    long = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    assert list(long.columns) == ["section", "target", "method", "metric", "value"]
    refinement = long[(long["section"] == "refinement") & (long["method"] == "egr")]
    api = refinement[(refinement["target"] == "2X9A") & (refinement["metric"] == "api_dockq")]
    assert api["value"].tolist() == [""]  # not computable: empty, not 0
    fi = refinement[(refinement["target"] == "1AK4") & (refinement["metric"] == "fi_dockq")]
    assert fi["value"].tolist() == ["50"]
    text = md.read_text()
    assert "## Refinement" in text and "| 1AK4 | EGR | 4 | +0.0027 |" in text and "50.00%" in text
    assert "## QA: ranking loss" in text


def test_run_without_natives(tmp_path: Path) -> None:
    rows = [
        {
            "id": "a",
            "input": "a.pdb",
            "status": "ok",
            "reason": "",
            "target": "",
            "mean_plddt": "0.7",
            "interface_plddt": "0.6",
        }
    ]
    ev = evaluate(write_tsv(tmp_path, rows))
    assert ev.refinement.empty and ev.qa.empty and ev.agreement.empty
    assert any("no native" in note for note in ev.notes)
    assert "No refinement scores." in to_markdown(ev)
