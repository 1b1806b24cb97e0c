"""Scores of every method's structure for one decoy against its native: the score columns of ``summary.tsv``.

Methods: ``decoy`` (the cleaned input), ``egr`` (the refined structure) and each comparison refiner
that produced a structure. For each: DockQ (GlobalDockQ), Fnat, iRMSD and LRMSD from
:func:`egr.metrics.dockq_scores` — for complexes with several interfaces Fnat/iRMSD/LRMSD are the means
over the native's interfaces — and Δ = method − decoy. For EGR, also the agreement of its predicted
per-residue LDDT-Cα with the true LDDT-Cα of the refined structure. A value that cannot be computed is
left out (an empty cell), never written as 0.

Natives are found by the samplesheet's ``native`` column or, with ``--natives DIR``, by name: the native
whose sanitised file name (extensions removed) equals the decoy ID or is its longest prefix followed by
``_`` (``1AK4.pdb`` serves ``1AK4_ti5-itw_212w``). The Nextflow pipeline applies the same rule.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from egr.io import atomic_write_text
from egr.metrics import ScoringError, dockq_scores, per_residue_lddt, qa_correlation
from egr.structure import sanitize_id

METRICS = ("dockq", "fnat", "irmsd", "lrmsd")
NATIVE_SUFFIXES = (".pdb", ".pdb.gz", ".cif", ".cif.gz", ".mmcif", ".mmcif.gz", ".ent", ".ent.gz")


def native_index(natives_dir: Path) -> dict[str, Path]:
    """Sanitised name → native file, for every structure file directly in ``natives_dir``."""
    files = [p for p in Path(natives_dir).iterdir() if p.is_file() and p.name.lower().endswith(NATIVE_SUFFIXES)]
    return {sanitize_id(p): p for p in sorted(files)}


def match_native(decoy_id: str, natives: dict[str, Path]) -> Path | None:
    """The native for ``decoy_id`` by the longest-prefix rule of the module docstring, or None."""
    candidates = [name for name in natives
                  if decoy_id == name or decoy_id.startswith(f"{name}_")]
    return natives[max(candidates, key=len)] if candidates else None


def _summary_of(path: Path, native: Path) -> dict[str, float]:
    scores = dockq_scores(path, native)
    interfaces = list(scores["interfaces"].values())
    return {
        "dockq": scores["global_dockq"],
        **{m: float(np.mean([i[m] for i in interfaces])) for m in ("fnat", "irmsd", "lrmsd")},
        "chain_map": scores["chain_map"],
    }


def score_methods(native: Path, structures: dict[str, Path]) -> tuple[dict[str, float], list[str]]:
    """DockQ-family scores of each ``method -> structure file`` and the Δ to ``decoy``.

    Returns the flat columns (``dockq_egr``, ``delta_dockq_egr``, …) and one-line notes for what could
    not be scored. Raises ScoringError when even the decoy cannot be scored (mismatched native).
    """
    columns: dict[str, float] = {}
    notes: list[str] = []
    per_method: dict[str, dict[str, float]] = {}
    for method, path in structures.items():
        try:
            per_method[method] = _summary_of(path, native)
        except ScoringError as exc:
            if method == "decoy":
                raise
            notes.append(f"{method}: not scored ({exc})")
    for method, values in per_method.items():
        for metric in METRICS:
            columns[f"{metric}_{method}"] = round(values[metric], 4)
            if method != "decoy":
                columns[f"delta_{metric}_{method}"] = round(values[metric] - per_method["decoy"][metric], 4)
    return columns, notes


def lddt_agreement(refined: Path, native: Path, plddt_table: list[tuple[str, int, str, str, float]],
                   out_csv: Path) -> dict[str, float | None]:
    """True per-residue LDDT-Cα of ``refined`` vs ``native`` beside the predicted values; writes
    ``out_csv`` (chain,resseq,icode,resname,plddt,true_lddt) and returns the agreement columns."""
    truth = {(r.chain, r.resseq, r.icode): r.lddt for r in per_residue_lddt(refined, native)}
    true = np.array([truth.get((chain, seq, icode), math.nan) for chain, seq, icode, _, _ in plddt_table])
    pred = np.array([row[4] for row in plddt_table], dtype=float)
    lines = ["chain,resseq,icode,resname,plddt,true_lddt"]
    lines += [f"{c},{s},{i},{n},{_cell(p)},{_cell(t)}" for (c, s, i, n, p), t in zip(plddt_table, true)]
    atomic_write_text(out_csv, "\n".join(lines) + "\n")
    agreement = qa_correlation(pred, true)
    finite = true[np.isfinite(true)]
    return {
        "lddt_pearson": _rounded(agreement["pearson"]), "lddt_spearman": _rounded(agreement["spearman"]),
        "lddt_mae": _rounded(agreement["mae"]), "true_lddt_mean": _rounded(float(finite.mean()) if len(finite) else None),
    }


def _cell(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else ""


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)
