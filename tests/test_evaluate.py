"""egr.evaluate on summaries built from real DockQ values, against numbers computed by hand.

The decoys' DockQ values are real: DockQ 2.1.3 labels of ``shared/data/haddock`` and ``bm5`` (targets
2OUL, 1AK4, 2X9A; see tests/data/pairs/labels.csv for the rows bundled here). The refined DockQ and the
QA scores are made up so that every table cell has a known value. The ranking measures (top-1 hits,
Spearman, ROC AUC, the exact random expectations, the input-order score) are also checked on small
hand-built summaries, and the contacts − 10×clashes reference score on the bundled real decoys against a
brute-force distance matrix.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scipy.stats import spearmanr

from egr.evaluate import (
    DOCKQ_TOLERANCE,
    OVERALL,
    dockq_improved,
    evaluate_frame,
    evaluate_results,
    only_decoys_of,
    parse_rankers,
    ranker_scores,
    read_summary,
    roc_auc,
    spearman_by_group,
    to_markdown,
    to_tsv,
    typed_summary,
    write_evaluation,
)
from egr.physics import interface_physics
from egr.refine import Refinement, write_outputs
from egr.structure import read_decoy
from egr.summary import BASE_COLUMNS, decoy_row, write_summary
from egr.weights import ModelInfo

DECOYS = Path(__file__).parent / "data" / "decoys"

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
# Made-up EGR scores. 2OUL by pred_dockq (EGR's default ranker): 2OUL_3, 2OUL_1, 2OUL_9 first; by
# interface_plddt (asked for as an extra score column): 2OUL_10, 2OUL_2, 2OUL_5.
PRED_DOCKQ = {
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
                "pred_dockq": _cell(PRED_DOCKQ[decoy]),
                "mean_plddt": _cell(round(1 - PRED_DOCKQ[decoy], 2)),  # no longer a default ranker
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
    table = evaluate_results(results).refinement
    ak4 = _row(table, target="1AK4", method="egr")
    # 1AK4: Δ = +0.0006, 0, -0.0011, +0.0111 (312w not scored) -> 1 of 4 improved: +0.0006 is below DockQ's
    # printed precision (0.001), so it is no improvement
    assert ak4["n"] == 4 and ak4["n_improved"] == 1
    assert ak4["delta_dockq"] == pytest.approx((0.0006 + 0.0 - 0.0011 + 0.0111) / 4, abs=1e-9)
    assert ak4["fi_dockq"] == pytest.approx(25.0)
    assert ak4["api_dockq"] == pytest.approx(100 * 0.0111 / 0.5550, rel=1e-3)  # 2.0 %
    assert ak4["delta_irmsd"] == pytest.approx((-0.1 + 0.2 - 0.3) / 3)  # mean over the 3 given, not /4
    x9a = _row(table, target="2X9A", method="egr")
    assert x9a["n"] == 1 and x9a["fi_dockq"] == 0.0 and math.isnan(x9a["api_dockq"])  # no improved decoy: empty
    overall = _row(table, target=OVERALL, method="egr")
    assert overall["n"] == 5 and overall["fi_dockq"] == pytest.approx(20.0)
    assert overall["delta_dockq"] == pytest.approx((0.0106 - 0.0063) / 5, abs=1e-9)
    assert overall["api_dockq"] == pytest.approx(ak4["api_dockq"])
    assert overall["seconds"] == pytest.approx(2.0)  # EGR's time is seconds_total without a seconds_egr column


def test_missing_scores_stay_empty_never_zero(results: Path) -> None:
    table = evaluate_results(results).refinement
    oul = _row(table, target="2OUL", method="egr")  # 2OUL: no refined score at all
    assert oul["n"] == 0 and oul["n_improved"] == 0
    assert all(math.isnan(oul[c]) for c in ("delta_dockq", "delta_irmsd", "fi_dockq", "api_dockq"))
    openmm = _row(table, target=OVERALL, method="openmm")  # skipped everywhere
    assert openmm["n"] == 0 and math.isnan(openmm["fi_dockq"]) and math.isnan(openmm["delta_dockq"])
    assert any("OpenMM relax: 16 skipped" in note and "not installed" in note for note in evaluate_results(results).notes)


def test_delta_recomputed_when_the_column_is_absent(results: Path) -> None:
    frame = read_summary(results).drop(columns=["delta_dockq_egr"])
    recomputed = _row(evaluate_frame(frame).refinement, target="1AK4", method="egr")
    assert recomputed["fi_dockq"] == pytest.approx(25.0) and recomputed["n"] == 4


def test_improved_means_more_than_dockq_precision() -> None:
    """FI-DockQ counts a decoy only when DockQ rose by more than 0.001 (DockQ prints 3 decimals): +0.0001 and
    exactly +0.001 are no improvement, +0.0011 is; a Δ recomputed from two columns is not pushed over by float
    error (0.4001 − 0.3991 = 0.0010000000000000009)."""
    assert DOCKQ_TOLERANCE == 1e-3
    before = [0.5, 0.5, 0.5, 0.3991, 0.5]
    after = [0.5001, 0.501, 0.5011, 0.4001, 0.4]
    frame = typed_summary(pd.DataFrame({
        "id": [f"d{i}" for i in range(5)], "status": "ok", "target": "T",
        "dockq_decoy": [str(v) for v in before], "dockq_egr": [str(v) for v in after]}))
    assert 0.4001 - 0.3991 > DOCKQ_TOLERANCE  # the float error the rounding guards against
    row = _row(evaluate_frame(frame).refinement, target="T", method="egr")
    assert row["n"] == 5 and row["n_improved"] == 1 and row["fi_dockq"] == pytest.approx(20.0)
    assert row["api_dockq"] == pytest.approx(100 * 0.0011 / 0.5)
    assert dockq_improved(pd.Series([np.nan, -0.002])).tolist() == [False, False]


def test_hit_rates_and_ranking_loss_top3(results: Path) -> None:
    qa = evaluate_results(results, ["interface_plddt"], top_n=3).qa
    egr = _row(qa, target="2OUL", ranker="pred_dockq")  # top 3: 0.0253, 0.8111, 0.6872
    assert (egr["hits_acceptable"], egr["hits_medium"], egr["hits_high"]) == (2, 2, 1)
    assert (egr["top1_acceptable"], egr["top1_medium"], egr["top1_high"]) == (0, 0, 0)  # 0.0253 first
    assert egr["ranking_loss"] == pytest.approx(0.8793 - 0.0253)
    iface = _row(qa, target="2OUL", ranker="interface_plddt")  # top 3: 0.6765, 0.8793, 0.0080
    assert (iface["hits_acceptable"], iface["hits_medium"], iface["hits_high"]) == (2, 2, 1)
    assert iface["ranking_loss"] == pytest.approx(0.8793 - 0.6765)
    assert (iface["top1_acceptable"], iface["top1_medium"], iface["top1_high"]) == (1, 1, 0)  # 0.6765 first
    order = _row(qa, target="2OUL", ranker="input_order")  # 0.8111, 0.6765, 0.8793
    assert (order["hits_acceptable"], order["hits_high"], order["ranking_loss"]) == (3, 2, pytest.approx(0.0682))
    assert (order["top1_acceptable"], order["top1_high"]) == (1, 1)  # 2OUL_1, 0.8111
    oracle = _row(qa, target="2OUL", ranker="oracle")
    assert (oracle["hits_acceptable"], oracle["hits_high"], oracle["ranking_loss"]) == (3, 2, 0.0)
    random = _row(qa, target="2OUL", ranker="random")  # expected: 3 × 4/10 acceptable, 3 × 2/10 high
    assert random["hits_acceptable"] == pytest.approx(1.2) and random["hits_high"] == pytest.approx(0.6)
    assert random["ranking_loss"] == pytest.approx(0.8793 - 3.1682 / 10)
    # top 1 of a random ranking: the fraction of the target's decoys in the class
    assert (random["top1_acceptable"], random["top1_medium"], random["top1_high"]) == pytest.approx((0.4, 0.4, 0.2))
    ak4 = _row(qa, target="1AK4", ranker="pred_dockq")  # 312w (0.5489) first; 745, 212w follow
    assert ak4["n_decoys"] == 5  # the failed decoy is not a candidate
    assert (ak4["hits_acceptable"], ak4["hits_medium"], ak4["hits_high"]) == (2, 2, 0)
    assert ak4["ranking_loss"] == pytest.approx(0.5550 - 0.5489)
    assert (ak4["top1_acceptable"], ak4["top1_medium"], ak4["top1_high"]) == (1, 1, 0)
    # the best 1AK4 decoy has no interface score: it ranks last, after every scored decoy
    unscored_last = _row(qa, target="1AK4", ranker="interface_plddt")
    assert unscored_last["hits_acceptable"] == 1 and unscored_last["ranking_loss"] == pytest.approx(0.5550 - 0.0114)


def test_qa_summary_over_targets(results: Path) -> None:
    summary = evaluate_results(results, top_n=3).qa_summary.set_index("ranker")
    egr = summary.loc["pred_dockq"]
    assert egr["n_targets"] == 2  # 2OUL and 1AK4; 2X9A has one decoy
    assert (egr["targets_acceptable"], egr["targets_medium"], egr["targets_high"]) == (2, 2, 1)
    assert egr["ranking_loss_mean"] == pytest.approx((0.8540 + 0.0061) / 2)
    assert egr["ranking_loss_std"] == pytest.approx(abs(0.8540 - 0.0061) / math.sqrt(2))
    assert (egr["top1_acceptable"], egr["top1_medium"], egr["top1_high"]) == (1, 1, 0)  # 1AK4 only
    # expected targets with an acceptable first decoy: 4/10 (2OUL) + 2/5 (1AK4)
    assert summary.loc["random", "top1_acceptable"] == pytest.approx(0.4 + 0.4)
    assert summary.loc["random", "top1_high"] == pytest.approx(0.2)
    assert (summary.loc["oracle", "top1_acceptable"], summary.loc["oracle", "top1_high"]) == (2, 1)
    # random: P(≥ 1 acceptable in a random top 3) = 1 − C(6,3)/C(10,3) for 2OUL, 1 − C(3,3)/C(5,3) for 1AK4
    assert summary.loc["random", "targets_acceptable"] == pytest.approx((1 - 20 / 120) + (1 - 1 / 10))
    assert summary.loc["random", "targets_high"] == pytest.approx(1 - 56 / 120)


def test_top10_default_includes_every_decoy_of_a_small_target(results: Path) -> None:
    ev = evaluate_results(results)
    oul = _row(ev.qa, target="2OUL", ranker="pred_dockq")
    assert (oul["top_n"], oul["hits_acceptable"], oul["hits_medium"], oul["hits_high"]) == (10, 4, 4, 2)
    assert "| 2OUL | 10 | 4/4/2 |" in to_markdown(ev)


def test_single_decoy_target_is_left_empty(results: Path) -> None:
    ev = evaluate_results(results)
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


def test_external_scores_join_the_rankers_by_id(results: Path, tmp_path: Path) -> None:
    # a docking program's energy (lower = better) for the 2OUL decoys only, as egr dock-pools writes it
    scores = tmp_path / "program_scores.tsv"
    scores.write_text("id\tprogram_energy\n2OUL_1\t-10.0\n2OUL_2\t-90.0\n2OUL_3\t-20.0\nnot_a_decoy\t1.0\n")
    evaluation = evaluate_results(results, ["program_energy:lower"], top_n=3, external_scores=scores)
    assert [r.key for r in evaluation.rankers].count("program_energy") == 1
    ranked = _row(evaluation.qa, target="2OUL", ranker="program_energy")
    assert ranked["ranking_loss"] == 0.0  # 2OUL_2 is both the best decoy and the lowest energy
    assert _row(evaluation.qa, target="1AK4", ranker="program_energy")["note"] == "no program_energy values"
    higher = evaluate_results(results, [], top_n=3, external_scores=scores)  # not listed: higher is better
    assert _row(higher.qa, target="2OUL", ranker="program_energy")["ranking_loss"] > 0.0
    for text, message in [("id\tpred_dockq\n2OUL_1\t1\n", "already name"), ("id\tx\nnope\t1\n", "none of its IDs"),
                          ("id\tx\n2OUL_1\tabc\n", "not numeric"), ("id\tx\n2OUL_1\t1\n2OUL_1\t2\n", "twice"),
                          ("name\tx\n2OUL_1\t1\n", "an 'id' column")]:
        scores.write_text(text)
        with pytest.raises(ValueError, match=message):
            evaluate_results(results, external_scores=scores)


def test_a_subset_evaluates_exactly_as_a_run_of_its_decoys_alone(results: Path, tmp_path: Path) -> None:
    # the 1AK4 and 2X9A decoys of the run, listed as a samplesheet would list them (one row not in the run)
    subset = tmp_path / "subset.csv"
    listed = [decoy for decoy in REAL_DOCKQ if not decoy.startswith("2OUL")] + ["1AK4_never_run"]
    subset.write_text("id,decoy\n" + "".join(f"{decoy},decoys/{decoy}.pdb\n" for decoy in listed))
    alone = write_tsv(tmp_path / "alone", [row for row in summary_rows() if not row["id"].startswith("2OUL")])
    evaluation, expected = evaluate_results(results, top_n=3, subset=subset), evaluate_results(alone, top_n=3)
    assert "2OUL" not in set(evaluation.qa["target"]) and "1AK4" in set(evaluation.qa["target"])
    pd.testing.assert_frame_equal(evaluation.qa_summary, expected.qa_summary)
    pd.testing.assert_frame_equal(evaluation.qa, expected.qa)
    pd.testing.assert_frame_equal(evaluation.refinement, expected.refinement)
    assert any("evaluated 6 of the summary's 17 decoys" in note and "(1 of its decoys are not in the summary)" in note
               for note in evaluation.notes)
    from click.testing import CliRunner

    from egr.cli import main

    refused = CliRunner().invoke(main, ["evaluate", str(results), "--subset", str(subset)])
    assert refused.exit_code == 2 and "--outdir other than RESULTS" in refused.output
    assert not (results / "evaluation.tsv").exists()
    written = CliRunner().invoke(main, ["evaluate", str(results), "--subset", str(subset), "--outdir",
                                        str(tmp_path / "part")])
    assert written.exit_code == 0, written.output
    assert (tmp_path / "part" / "evaluation.tsv").is_file() and not (tmp_path / "part" / "summary.tsv").exists()
    subset.write_text("id,decoy\nnot_a_decoy,x.pdb\n")
    with pytest.raises(ValueError, match="none of its 1 decoys"):
        evaluate_results(results, subset=subset)


def test_a_subset_finds_its_decoys_by_file_before_id(tmp_path: Path) -> None:
    # egr run named two files called x.pdb x and x_2; a subset that lists the second alone calls it x
    frame = pd.DataFrame({"id": ["x", "x_2", "y"], "input": ["a/x.pdb", "b/x.pdb", "c/y.pdb"]})
    subset = tmp_path / "subset.csv"
    subset.write_text("id,decoy\nx,b/x.pdb\n")
    assert only_decoys_of(frame, subset)[0]["id"].tolist() == ["x_2"]
    subset.write_text(f"id,decoy\nx,{tmp_path / 'elsewhere' / 'x.pdb'}\ny,{tmp_path / 'y_renamed.pdb'}\n")
    # no input matches: by ID, where the run's file has the same name (x), not where it does not (y)
    assert only_decoys_of(frame, subset)[0]["id"].tolist() == ["x"]


def test_the_runs_haddock_scores_rank_lower_first_in_evaluate_and_the_report(results: Path) -> None:
    from egr import layout
    from egr.report import load_run

    before = evaluate_results(results, top_n=3)
    assert "haddock_score" not in [r.key for r in before.rankers]  # no file, no ranker
    # as `egr haddock-score RESULTS` writes it: lowest (best) for 2OUL_2, the best decoy; one failed cell
    layout.haddock_scores(results).write_text("id\thaddock_score\n2OUL_1\t-60.0\n2OUL_2\t-120.5\n2OUL_3\t\n")
    for evaluation in (evaluate_results(results, top_n=3), load_run(results, top_n=3).evaluation):
        ranker = next(r for r in evaluation.rankers if r.key == "haddock_score")
        assert ranker.label == "HADDOCK score (lower is better)"
        assert _row(evaluation.qa, target="2OUL", ranker="haddock_score")["ranking_loss"] == 0.0


def test_a_run_score_file_that_does_not_fit_is_a_note_not_an_error(results: Path) -> None:
    from egr import layout

    layout.haddock_scores(results).write_text("id\thaddock_score\nfrom_another_run\t-50.0\n")
    evaluation = evaluate_results(results, top_n=3)
    assert "haddock_score" not in [r.key for r in evaluation.rankers]
    assert any("none of its IDs" in note and "not ranked by" in note for note in evaluation.notes)


def test_written_files(results: Path, tmp_path: Path) -> None:
    tsv, md = write_evaluation(evaluate_results(results), tmp_path / "out")
    long = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    assert list(long.columns) == ["section", "target", "method", "metric", "value"]
    refinement = long[(long["section"] == "refinement") & (long["method"] == "egr")]
    api = refinement[(refinement["target"] == "2X9A") & (refinement["metric"] == "api_dockq")]
    assert api["value"].tolist() == [""]  # not computable: empty, not 0
    fi = refinement[(refinement["target"] == "1AK4") & (refinement["metric"] == "fi_dockq")]
    assert fi["value"].tolist() == ["25"]
    text = md.read_text()
    assert "## Refinement" in text and "| 1AK4 | EGR | 4 | +0.0027 |" in text and "25.00%" in text
    assert "improved by more than 0.001" in text
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
    ev = evaluate_results(write_tsv(tmp_path, rows))
    assert ev.refinement.empty and ev.qa.empty and ev.agreement.empty
    assert any("no native" in note for note in ev.notes)
    assert "No refinement scores." in to_markdown(ev)


# ------------------------------------------------------------------------------------------------
# Rankers side by side: EGR's predicted DockQ and the references
# ------------------------------------------------------------------------------------------------


def test_default_rankers_are_egr_then_the_references() -> None:
    rankers = parse_rankers()
    assert [r.key for r in rankers] == ["pred_dockq", "contacts_clashes", "inter_chain_contacts", "input_order",
                                         "random", "oracle"]
    assert rankers[0].label == "EGR predicted DockQ" and rankers[0].column == "pred_dockq"
    assert rankers[1].label == "Contacts − 10×clashes" and rankers[1].column == "contacts_clashes"
    assert rankers[1].higher_is_better
    # pLDDT is no longer a default ranker, but any column can still be asked for; a reference name is not doubled
    keys = [r.key for r in parse_rankers(["mean_plddt", "contacts_clashes", "energy:lower"])]
    assert keys == ["pred_dockq", "mean_plddt", "energy", "contacts_clashes", "inter_chain_contacts",
                    "input_order", "random", "oracle"]


def brute_force_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + ½ P(equal), over all pairs."""
    pos, neg = score[positive][:, None], score[~positive][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_roc_auc_perfect_reversed_ties() -> None:
    truth = pd.Series([0.9, 0.5, 0.3, 0.2, 0.1, 0.0])
    positive = truth >= 0.23
    assert roc_auc(truth, positive) == 1.0  # a perfect ranker
    assert roc_auc(-truth, positive) == 0.0  # the reversed one
    assert roc_auc(pd.Series(1.0, index=truth.index), positive) == 0.5  # all tied: every pair counts ½
    # one tie between a positive and a negative: (1 + 1 + ½ + 1) / 4
    assert roc_auc(pd.Series([2.0, 1.0, 1.0, 0.0]), pd.Series([True, True, False, False])) == 0.875
    # an unscored decoy stays out; no negatives (or no positives): undefined
    assert roc_auc(pd.Series([0.3, np.nan, 0.1]), pd.Series([True, False, False])) == 1.0
    assert math.isnan(roc_auc(truth, truth >= 0.0)) and math.isnan(roc_auc(truth, truth > 1.0))
    rng = np.random.default_rng(3)
    score = rng.integers(0, 5, 200).astype(float)  # many ties
    labels = rng.random(200) < 0.3
    assert roc_auc(pd.Series(score), pd.Series(labels)) == pytest.approx(brute_force_auc(score, labels), abs=1e-12)


def test_spearman_by_group_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(5)
    score = pd.Series(rng.integers(0, 4, 30).astype(float))  # ties
    truth = pd.Series(rng.random(30))
    groups = pd.Series(["a"] * 12 + ["b"] * 10 + ["c"] * 2 + ["d"] * 6)
    score[25:] = 1.0  # d: constant score
    result = spearman_by_group(score, truth, groups)
    assert list(result.index) == ["a", "b", "c", "d"]
    for name, rows in (("a", slice(0, 12)), ("b", slice(12, 22))):
        assert result[name] == pytest.approx(spearmanr(score[rows], truth[rows]).statistic, abs=1e-12)
    assert math.isnan(result["c"]) and math.isnan(result["d"])  # 2 decoys; a constant score
    with_gap = score.copy()
    with_gap[0] = np.nan  # an unscored decoy is left out of its group's correlation
    assert spearman_by_group(with_gap, truth, groups)["a"] == pytest.approx(
        spearmanr(score[1:12], truth[1:12]).statistic, abs=1e-12)


def hand_built_summary() -> pd.DataFrame:
    """Three targets in interleaved summary order. pred_dockq ranks each target's decoys perfectly but puts
    all of T2 above T1: per target Spearman 1, pooled much less. T1_e (the best) has no pred_dockq; T3 has
    one decoy. contacts_clashes ranks T1 backwards and ties within T2."""
    rows = [  # id, target, DockQ, pred_dockq, contacts_clashes
        ("T1_a", "T1", 0.90, 0.4, 10.0), ("T2_a", "T2", 0.50, 0.9, 5.0), ("T1_b", "T1", 0.60, 0.3, 20.0),
        ("T2_b", "T2", 0.20, 0.8, 5.0), ("T1_c", "T1", 0.30, 0.2, 30.0), ("T1_d", "T1", 0.10, 0.1, 40.0),
        ("T2_c", "T2", 0.05, 0.7, 5.0), ("T3_a", "T3", 0.00, 0.0, 0.0), ("T1_e", "T1", 0.95, None, 0.0),
    ]
    raw = pd.DataFrame([{"id": i, "input": f"{i}.pdb", "status": "ok", "reason": "", "target": t,
                         "dockq_decoy": str(d), "pred_dockq": None if p is None else str(p), "contacts_clashes": str(c)}
                        for i, t, d, p, c in rows])
    return typed_summary(raw)  # as read_summary types summary.tsv (None = an empty cell)


def test_top1_spearman_auc_on_a_hand_built_summary() -> None:
    frame = hand_built_summary()
    ev = evaluate_frame(frame, top_n=2)
    summary = ev.qa_summary.set_index("ranker")
    egr = summary.loc["pred_dockq"]
    # top 1: T1_a (0.90, high; T1_e is unscored and ranks last), T2_a (0.50, medium)
    assert (egr["n_targets"], egr["top1_acceptable"], egr["top1_medium"], egr["top1_high"]) == (2, 2, 2, 1)
    assert egr["ranking_loss_mean"] == pytest.approx(((0.95 - 0.90) + 0.0) / 2)
    assert egr["spearman_per_target"] == pytest.approx(1.0)  # perfect within T1 (4 scored) and T2 (3)
    scored = frame["pred_dockq"].notna()
    assert egr["n_decoys"] == 8  # every decoy with a DockQ and a score, the single-decoy T3 included
    assert egr["spearman"] == pytest.approx(
        spearmanr(frame.loc[scored, "pred_dockq"], frame.loc[scored, "dockq_decoy"]).statistic, abs=1e-12)
    assert egr["spearman"] < 0.5
    # acceptable: T1_a, T1_b, T1_c, T2_a; each beats T1_d and T3_a; only T2_a beats T2_b, T2_c -> (3·2 + 4) / 16
    assert egr["auc_acceptable"] == pytest.approx(10 / 16)
    physics = summary.loc["contacts_clashes"]
    assert physics["n_decoys"] == 9 and physics["top1_high"] == 0  # T1: T1_d (40) first; T2: a tie, input order
    assert physics["ranking_loss_mean"] == pytest.approx(((0.95 - 0.10) + 0.0) / 2)
    qa = ev.qa
    assert _row(qa, target="T1", ranker="contacts_clashes")["spearman"] == pytest.approx(
        spearmanr([10, 20, 30, 40, 0], [0.9, 0.6, 0.3, 0.1, 0.95]).statistic)
    assert math.isnan(_row(qa, target="T2", ranker="contacts_clashes")["spearman"])  # constant score
    acceptable = frame["dockq_decoy"].to_numpy() >= 0.23
    assert physics["auc_acceptable"] == pytest.approx(
        brute_force_auc(frame["contacts_clashes"].to_numpy(), acceptable))
    oracle = summary.loc["oracle"]
    assert (oracle["spearman"], oracle["spearman_per_target"], oracle["auc_acceptable"]) == (1.0, 1.0, 1.0)
    assert (oracle["top1_acceptable"], oracle["top1_high"], oracle["ranking_loss_mean"]) == (2, 1, 0.0)
    random = summary.loc["random"]
    assert (random["spearman"], random["spearman_per_target"], random["auc_acceptable"]) == (0.0, 0.0, 0.5)
    # T1: 4 of 5 acceptable, 3 medium, 2 high; T2: 1 of 3 acceptable and medium, none high
    assert random["top1_acceptable"] == pytest.approx(4 / 5 + 1 / 3)
    assert random["top1_medium"] == pytest.approx(3 / 5 + 1 / 3)
    assert random["top1_high"] == pytest.approx(2 / 5)
    assert random["n_decoys"] == 9 and random["n_targets"] == 2


def test_input_order_score_is_minus_the_position_within_the_target() -> None:
    frame = hand_built_summary()
    pool = pd.DataFrame({"target": frame["target"], "truth": frame["dockq_decoy"]})
    order = next(r for r in parse_rankers() if r.key == "input_order")
    assert ranker_scores(pool, frame, order).tolist() == [-1, -1, -2, -2, -3, -4, -3, -1, -5]
    assert ranker_scores(pool, frame, next(r for r in parse_rankers() if r.key == "random")) is None
    summary = evaluate_frame(frame, top_n=2).qa_summary.set_index("ranker").loc["input_order"]
    positions = -np.array([1, 1, 2, 2, 3, 4, 3, 1, 5], dtype=float)
    acceptable = frame["dockq_decoy"].to_numpy() >= 0.23
    assert summary["auc_acceptable"] == pytest.approx(brute_force_auc(positions, acceptable))
    assert summary["spearman"] == pytest.approx(spearmanr(positions, frame["dockq_decoy"]).statistic)
    assert (summary["top1_acceptable"], summary["top1_high"]) == (2, 1)  # T1_a and T2_a come first


def test_missing_reference_column_is_listed_empty_with_a_note() -> None:
    frame = hand_built_summary().drop(columns=["contacts_clashes", "pred_dockq"])
    ev = evaluate_frame(frame)
    summary = ev.qa_summary.set_index("ranker")
    for key in ("pred_dockq", "contacts_clashes"):
        row = summary.loc[key]
        assert row["n_targets"] == 0 and row["n_decoys"] == 0
        assert row[["top1_acceptable", "targets_acceptable", "ranking_loss_mean", "spearman",
                    "spearman_per_target", "auc_acceptable"]].isna().all()
        assert any(f"no {key} column" in note for note in ev.notes)
    assert summary.loc["oracle", "auc_acceptable"] == 1.0  # the other rankers are unaffected
    text = to_markdown(ev)
    assert "| EGR predicted DockQ | 0 |  |  |  |  |  |  | 0 |" in text
    assert "| Contacts − 10×clashes | 0 |  |  |  |  |  |  | 0 |" in text


def test_side_by_side_table_in_markdown_and_tsv() -> None:
    ev = evaluate_frame(hand_built_summary(), top_n=2)
    text = to_markdown(ev)
    assert "## QA: rankers side by side" in text and "## QA: Top-1 hit rate" in text
    assert ("| Ranker | Targets | Top-1 a/b/c ↑ | Top-2 a/b/c ↑ | Ranking loss ↓ (mean ± sd) "
            "| Spearman ↑ (pooled) | Spearman ↑ (per-target mean) | AUC acceptable ↑ | Decoys |") in text
    assert "| EGR predicted DockQ | 2 | 2/2/1 | 2/2/1 | 0.0250 ± 0.0354 |" in text
    assert "| Best possible | 2 | 2/2/1 | 2/2/1 | 0.0000 ± 0.0000 | 1.0000 | 1.0000 | 1.0000 | 9 |" in text
    assert "| Random (expected) | 2 | 1.1/0.9/0.4 |" in text
    long = pd.read_csv(pd.io.common.StringIO(to_tsv(ev)), sep="\t", dtype=str, keep_default_na=False)
    summary = long[long["section"] == "qa_summary"]
    values = dict(zip(summary["method"] + ":" + summary["metric"], summary["value"]))
    assert values["pred_dockq:auc_acceptable"] == "0.625" and values["random:spearman"] == "0"
    assert values["oracle:n_decoys"] == "9" and values["pred_dockq:top1_high"] == "1"
    per_target = long[(long["section"] == "qa") & (long["target"] == "T1") & (long["method"] == "pred_dockq")]
    assert dict(zip(per_target["metric"], per_target["value"]))["spearman"] == "1"


# ------------------------------------------------------------------------------------------------
# contacts − 10 × clashes: definition, refine's scores.json, the summary
# ------------------------------------------------------------------------------------------------


def brute_force_physics(path: Path) -> tuple[int, int]:
    """Inter-chain heavy-atom pairs < 5 Å and < 3 Å from the full distance matrix (each pair once)."""
    c, _ = read_decoy(path)
    distance = np.linalg.norm(c.coords[:, None, :] - c.coords[None, :, :], axis=-1)
    pair = np.triu(c.chain_index[:, None] != c.chain_index[None, :], 1)
    return int((pair & (distance < 5.0)).sum()), int((pair & (distance < 3.0)).sum())


@pytest.mark.parametrize("name", sorted(p.name for p in DECOYS.glob("*.pdb.gz")))
def test_contacts_clashes_equals_brute_force_on_real_decoys(name: str) -> None:
    contacts, clashes = brute_force_physics(DECOYS / name)
    c, _ = read_decoy(DECOYS / name)
    physics = interface_physics(c)
    assert not np.any(c.elements == "H")  # heavy atoms only
    assert contacts > 0
    assert int(np.triu(physics.contacts, 1).sum()) == contacts and int(np.triu(physics.clashes, 1).sum()) == clashes
    assert physics.contacts_clashes == contacts - 10 * clashes


def test_contacts_clashes_per_chain_pair_with_a_third_chain_and_one_out_of_reach() -> None:
    """Per chain pair, as the docking head reads them: a copy of the ligand pushed into the receptor (a third
    chain in contact with both) and one 200 Å away (no pair in reach: zero, not searched)."""
    c, _ = read_decoy(DECOYS / "1AK4_ti5-itw_212w.pdb.gz")
    ligand = c.chain_index == 1
    centre_shift = 0.2 * (c.coords[~ligand].mean(0) - c.coords[ligand].mean(0))
    parts = [c.coords, c.coords[ligand] + centre_shift, c.coords[ligand] + 200.0]
    coords = np.concatenate(parts)
    chain = np.concatenate([c.chain_index, np.full(ligand.sum(), 2), np.full(ligand.sum(), 3)])
    physics = interface_physics(SimpleNamespace(coords=coords, chain_index=chain, n_atoms=len(coords)))
    distance = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    for a in range(4):
        for b in range(4):
            between = (chain[:, None] == a) & (chain[None, :] == b) if a != b else np.zeros_like(distance, bool)
            assert physics.contacts[a, b] == int((between & (distance < 5.0)).sum())
            assert physics.clashes[a, b] == int((between & (distance < 3.0)).sum())
    assert physics.contacts[1, 2] > 0 and physics.clashes[0, 2] > 0 and not physics.contacts[3].any()


def test_refine_scores_and_summary_carry_the_new_columns(tmp_path: Path) -> None:
    path = DECOYS / "kq_1kq1_pdb1_1_ATTRACT.pdb.gz"
    c, _ = read_decoy(path)
    contacts, clashes = brute_force_physics(path)
    bundle = SimpleNamespace(complex=c, decoy_id="attract", surface_backend=["builtin"] * c.n_atoms, kind="all_atom")
    refinement = Refinement(coords=c.coords + 0.5, plddt=np.full(c.n_residues, 0.7), seconds=0.1)
    info = ModelInfo(path="w.safetensors", sha256="0" * 64, trained=True, description="test", kind="all_atom")
    scores = write_outputs(bundle, refinement, tmp_path, info, "cpu")
    # of the input decoy, not of the (shifted) refined coordinates
    assert (scores["inter_chain_contacts"], scores["inter_chain_clashes"]) == (contacts, clashes)
    assert scores["contacts_clashes"] == contacts - 10 * clashes
    written = json.loads((tmp_path / "attract" / "attract_scores.json").read_text())
    assert written["contacts_clashes"] == scores["contacts_clashes"]
    # the summary reads them, with EGR's predicted DockQ (another key of scores.json)
    written.update(pred_dockq=0.4321, pred_dockq_refined=0.5)
    (tmp_path / "attract" / "attract_scores.json").write_text(json.dumps(written))
    row = decoy_row(tmp_path / "attract" / "attract_scores.json")
    assert (row["pred_dockq"], row["pred_dockq_refined"]) == (0.4321, 0.5)
    assert (row["contacts_clashes"], row["inter_chain_contacts"], row["inter_chain_clashes"]) == (
        contacts - 10 * clashes, contacts, clashes)
    for column in ("pred_dockq", "pred_dockq_refined", "contacts_clashes", "inter_chain_contacts",
                   "inter_chain_clashes"):
        assert column in BASE_COLUMNS
    failed = tmp_path / "broken_scores.json"
    failed.write_text(json.dumps({"id": "broken", "status": "failed", "reason": "no ATOM records"}))
    write_summary(tmp_path / "summary.tsv", [row, decoy_row(failed)])
    frame = read_summary(tmp_path / "summary.tsv")
    assert frame["contacts_clashes"].tolist()[0] == contacts - 10 * clashes
    assert math.isnan(frame["contacts_clashes"].tolist()[1]) and math.isnan(frame["pred_dockq"].tolist()[1])
