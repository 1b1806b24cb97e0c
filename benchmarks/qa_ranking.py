"""QA ranking benchmark: EGR's predicted DockQ beside the rankers a user would otherwise trust, on held-out
decoys, through the product path (`egr run` + `egr evaluate`), in one command.

Benchmarks (the tables of MODEL_CARD.md, "Test split through the product path"):

* ``test_docking``: the real docking decoys (dips + haddock) of the test targets;
* ``test_all``: every test decoy (with the bm5 unbound decoys, one per target) — the same run, evaluated
  whole (``test_docking`` is its ``egr evaluate --subset``);
* ``haddock``: the test targets' HADDOCK models, a single-program pool ranked beside HADDOCK3's own score
  (``egr haddock-score``; left out, with the reason, where HADDOCK3 is not installed);
* ``pools_<split>`` for each ``--pools`` split: LightDock pools (``egr dock-pools``, true-interface
  restraints, the model card's settings) ranked beside LightDock's own score.

Every step resumes: ``egr run`` keeps the decoys it finished with the same weights, ``egr dock-pools`` the
bases it docked, so a rerun after an interruption, or with other ``--weights`` into another ``--outdir``
beside the same ``--pools-dir``, redoes only what is missing. Prints one table per benchmark (rankers ×
top-1 a/b/c, ranking loss, Spearman pooled and per target, ROC AUC for acceptable; the best non-oracle
value of each measure marked ``*``) and writes them to OUTDIR/qa_ranking.md.

    python benchmarks/qa_ranking.py --root ../shared/data --outdir results/qa --workers 2 [--pools test,val]

Time (2026-12-04, the 2-core machine, 1 worker): the 58 test decoys about 2 min through egr run, the 10
HADDOCK models 16 s plus 2.6 min of HADDOCK scoring; the LightDock pools take longest (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SPLITS = REPO / "artifacts" / "egr_trained_run" / "splits.tsv"
# the model card's LightDock pools: LightDock's 10 best-scored distinct poses plus up to 5 lower-ranked acceptable ones
POOL_OPTIONS = ["--sets", "dips,bm5", "--restraints", "true-interface", "--swarms", "20", "--glowworms", "20",
                "--steps", "20", "--top", "10", "--near", "5"]
MEASURES = ("top-1 a/b/c", "ranking loss", "Spearman pooled", "Spearman per target", "AUC acceptable")


def egr(*args: object, allowed: tuple[int, ...] = (0,)) -> int:
    """Run one egr command (the one installed beside this Python), echoing it; raise on an exit code not allowed."""
    command = [str(Path(sys.executable).with_name("egr")), *map(str, args)]
    print("+ egr " + " ".join(map(str, args)), flush=True)
    began = time.perf_counter()
    code = subprocess.run(command).returncode
    print(f"  ({time.perf_counter() - began:.0f} s, exit {code})", flush=True)
    if code not in allowed:
        raise SystemExit(f"egr {args[0]} failed with exit {code}")
    return code


def summary_table(evaluation_tsv: Path) -> pd.DataFrame:
    """The qa_summary section of an ``egr evaluate`` evaluation.tsv as rankers × measures (text cells)."""
    long = pd.read_csv(evaluation_tsv, sep="\t", dtype={"value": str})
    long = long[long["section"] == "qa_summary"].assign(value=lambda t: pd.to_numeric(t["value"], errors="coerce"))
    wide = long.pivot_table(index="method", columns="metric", values="value", sort=False, dropna=False)
    wide = wide[wide["n_decoys"] > 0]
    table = pd.DataFrame(index=wide.index)
    table["top-1 a/b/c"] = [f"{a:g}/{b:g}/{c:g}" if pd.notna(a) else "" for a, b, c in
                            wide[["top1_acceptable", "top1_medium", "top1_high"]].round(1).to_numpy()]
    table["ranking loss"] = [(f"{m:.3g}" + (f" ± {s:.3g}" if pd.notna(s) else "")) if pd.notna(m) else ""
                             for m, s in wide[["ranking_loss_mean", "ranking_loss_std"]].to_numpy()]
    for name, metric in [("Spearman pooled", "spearman"), ("Spearman per target", "spearman_per_target"),
                         ("AUC acceptable", "auc_acceptable")]:
        table[name] = [f"{v:.3f}" if pd.notna(v) else "" for v in wide[metric]]
    contenders = [ranker for ranker in wide.index if ranker != "oracle"]
    top1 = wide[["top1_acceptable", "top1_medium", "top1_high"]].fillna(-1.0)
    keys = {"top-1 a/b/c": lambda r: tuple(top1.loc[r].round(6)),  # acceptable first, then medium, then high
            "ranking loss": lambda r: -wide.loc[r, "ranking_loss_mean"],
            "Spearman pooled": lambda r: wide.loc[r, "spearman"],
            "Spearman per target": lambda r: wide.loc[r, "spearman_per_target"],
            "AUC acceptable": lambda r: round(wide.loc[r, "auc_acceptable"], 6)}
    for measure, key in keys.items():
        scored = [r for r in contenders if not pd.isna(np.min(key(r)))]
        best = max((key(r) for r in scored), default=None)
        table[measure] = [f"{cell} *" if r in scored and key(r) == best else cell
                          for r, cell in zip(table.index, table[measure])]
    table.insert(0, "decoys / targets", [f"{n:g} / {t:g}" for n, t in wide[["n_decoys", "n_targets"]].to_numpy()])
    return table


def markdown(title: str, table: pd.DataFrame, notes: list[str]) -> str:
    lines = [f"## {title}", "", "| ranker | " + " | ".join(table.columns) + " |",
             "|---" * (len(table.columns) + 1) + "|"]
    lines += [f"| {ranker} | " + " | ".join(row) + " |" for ranker, row in zip(table.index, table.to_numpy())]
    return "\n".join(lines + [""] + [f"* {note}" for note in notes] + [""])


def run_and_evaluate(samplesheet: Path, results: Path, weights: Path | None, workers: int,
                     evaluate_args: list[object]) -> None:
    """egr run (exit 1 = some decoy failed, which evaluate reports) then egr evaluate."""
    egr("run", "--input", samplesheet, "--outdir", results, "--workers", workers,
        *(["--weights", weights] if weights else []), allowed=(0, 1))
    egr("evaluate", results, *evaluate_args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="Data root (shared/data layout).")
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--splits", type=Path, default=SPLITS, help="splits.tsv (default: the shipped model's).")
    parser.add_argument("--weights", type=Path, help="EGR weights (default: the shipped ones).")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pools", default="", help="Comma-separated splits to build LightDock pools for (val,test).")
    parser.add_argument("--pools-dir", type=Path, help="Where the pools are docked (default: OUTDIR); shared "
                                                       "between runs with different --weights.")
    args = parser.parse_args()
    out = args.outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sections: list[str] = []

    def report(title: str, evaluation: Path, notes: list[str]) -> None:
        table = summary_table(evaluation / "evaluation.tsv")
        text = markdown(title, table, notes + [f"egr evaluate: {evaluation / 'evaluation.md'}"])
        print("\n" + text, flush=True)
        sections.append(text)

    def listed(sets: str, name: str) -> Path | None:
        """The test decoys of ``sets`` as a samplesheet; None (with a section saying so) where there are none."""
        path = out / name
        if egr("split-samplesheet", "--root", args.root, "--splits", args.splits, "--split", "test", "--sets", sets,
               "--out", path, allowed=(0, 2)) == 0:
            return path
        sections.append(f"## Test decoys of {sets}\n\n* none in {args.splits} under {args.root}\n")
        return None

    everything, docking, haddock = (listed("bm5,dips,haddock", "test.csv"), listed("dips,haddock", "test_docking.csv"),
                                    listed("haddock", "test_haddock.csv"))
    if everything:
        run_and_evaluate(everything, out / "test", args.weights, args.workers, ["--outdir", out / "eval_test_all"])
    if docking:
        egr("evaluate", out / "test", "--subset", docking, "--outdir", out / "eval_test_docking")
        report("Test split: real docking decoys (dips + haddock)", out / "eval_test_docking", [])
    if everything:
        report("Test split: every decoy (bm5 unbound too)", out / "eval_test_all", [])

    if haddock:
        egr("run", "--input", haddock, "--outdir", out / "haddock", "--workers", args.workers,
            *(["--weights", args.weights] if args.weights else []), allowed=(0, 1))
        scores = out / "haddock" / "haddock_scores.tsv"  # HADDOCK's score of a decoy does not depend on EGR's weights
        code = 0 if scores.is_file() else egr("haddock-score", out / "haddock", allowed=(0, 1, 2))
        if code == 2:  # HADDOCK3 not installed
            haddock_note = "HADDOCK3's own score left out: egr haddock-score could not run (its message above)"
        else:
            haddock_note = (f"HADDOCK score: HADDOCK3 emscoring (egr haddock-score, {scores}), lower = better"
                            + ("; some decoys could not be scored (empty cells)" if code else ""))
        egr("evaluate", out / "haddock")
        report("HADDOCK models of the test targets (a single-program pool)", out / "haddock", [haddock_note])

    pools_dir = (args.pools_dir or args.outdir).resolve()
    for split in [name for name in args.pools.split(",") if name]:
        pools = pools_dir / f"pools_{split}"
        code = egr("dock-pools", "--root", args.root, "--splits", args.splits, "--outdir", pools, "--split", split,
                   *POOL_OPTIONS, "--workers", args.workers, allowed=(0, 1, 2))
        if code == 2 or not (pools / "samplesheet.csv").is_file():
            note = f"pools_{split} left out: egr dock-pools could not run (its message above)"
            print(note)
            sections.append(f"## LightDock pools, {split} targets\n\n* {note}\n")
            continue
        results = out / f"pools_{split}_results"
        run_and_evaluate(pools / "samplesheet.csv", results, args.weights, args.workers,
                         ["--external-scores", pools / "lightdock_scores.tsv"])
        report(f"LightDock pools of the {split} targets (true-interface restraints)", results,
               ["lightdock_score: LightDock's own score of each pose, higher = better"]
               + ([f"some targets could not be docked: {pools / 'skipped.tsv'}"] if code else []))

    weights = args.weights or "the shipped weights (egr/data/egr_default.safetensors)"
    header = (f"# QA ranking benchmark\n\nWeights: {weights}. `*`: the best value of the measure among the rankers "
              "other than the oracle. Made by `python benchmarks/qa_ranking.py " + " ".join(sys.argv[1:]) + "`.\n")
    (out / "qa_ranking.md").write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {out / 'qa_ranking.md'}")


if __name__ == "__main__":
    if shutil.which(str(Path(sys.executable).with_name("egr"))) is None:
        raise SystemExit("egr is not installed beside this Python: pip install -e . first")
    main()
