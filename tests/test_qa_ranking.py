"""benchmarks/qa_ranking.py's table: what `egr evaluate` wrote, rankers × measures, the best non-oracle value marked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from egr.evaluate import evaluate_results, write_evaluation
from test_evaluate import summary_rows, write_tsv

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "qa_ranking.py"


def _harness():
    spec = importlib.util.spec_from_file_location("qa_ranking", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_table_reads_the_evaluation_and_marks_the_best_non_oracle_values(tmp_path: Path) -> None:
    results = write_tsv(tmp_path / "results", summary_rows())
    evaluation = evaluate_results(results, ["interface_plddt"], top_n=3)
    write_evaluation(evaluation, tmp_path)
    table = _harness().summary_table(tmp_path / "evaluation.tsv")
    summary = evaluation.qa_summary.set_index("ranker")

    # rankers without a single scored decoy (the physics references: the summary has no counts) are left out
    assert list(table.index) == [r for r in summary.index if summary.loc[r, "n_decoys"] > 0]
    egr = summary.loc["pred_dockq"]
    row = table.loc["pred_dockq"]
    assert row["decoys / targets"] == f"{egr['n_decoys']:g} / {egr['n_targets']:g}"
    assert row["top-1 a/b/c"].split(" ")[0] == f"{egr['top1_acceptable']:g}/{egr['top1_medium']:g}/{egr['top1_high']:g}"
    assert row["ranking loss"].startswith(f"{egr['ranking_loss_mean']:.3g} ± {egr['ranking_loss_std']:.3g}")
    assert row["AUC acceptable"].split(" ")[0] == f"{egr['auc_acceptable']:.3f}"

    contenders = summary.drop(index="oracle")
    contenders = contenders[contenders["n_decoys"] > 0]
    assert not any(cell.endswith("*") for cell in table.loc["oracle"])
    for measure, metric, best in [("ranking loss", "ranking_loss_mean", contenders["ranking_loss_mean"].min()),
                                  ("AUC acceptable", "auc_acceptable", contenders["auc_acceptable"].max())]:
        starred = {r for r in table.index if table.loc[r, measure].endswith(" *")}
        assert starred == set(contenders.index[contenders[metric] == best]) and starred


def test_markdown_has_one_row_per_ranker() -> None:
    import pandas as pd

    table = pd.DataFrame({"AUC acceptable": ["0.900 *", "0.500"]}, index=["pred_dockq", "random"])
    text = _harness().markdown("Title", table, ["a note"])
    assert text.splitlines()[:5] == ["## Title", "", "| ranker | AUC acceptable |", "|---|---|",
                                     "| pred_dockq | 0.900 * |"]
    assert "* a note" in text

