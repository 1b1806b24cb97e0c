"""Run report (``egr report``): MultiQC custom content and one self-contained HTML page.

Reads a finished results folder (``summary.tsv``, ``pipeline_info/run_info.json`` and per decoy
``<id>/<id>_plddt.csv`` (with its ``interface`` column), ``<id>_egr_dockq.json`` (per-residue true
LDDT-Cα) when a native was given; the same
files side by side in one folder, as Nextflow stages them, work too) and writes into ``outdir``:

* MultiQC custom content (MultiQC picks up only names ending ``_mqc.tsv`` / ``_mqc.yaml``):
  ``egr_decoys_mqc.tsv`` (per-decoy table), ``egr_delta_dockq_mqc.yaml`` (ΔDockQ per decoy and
  method, bar graph), ``egr_dockq_scatter_mqc.yaml`` (decoy vs refined DockQ, one dataset per
  method), ``egr_plddt_mqc.yaml`` (mean and interface pLDDT per decoy), ``egr_refinement_mqc.tsv`` and
  ``egr_qa_mqc.tsv`` (the tables of :mod:`egr.evaluate`), ``egr_qa_rankers_mqc.tsv`` (the rankers side
  by side: EGR's predicted DockQ beside contacts − 10×clashes, input order, random and the best possible),
  plus ``egr_software_mqc_versions.yml``.
  The DockQ files are written only when the run has DockQ scores. With MultiQC installed (the
  optional extra ``report``), ``egr report`` also builds ``multiqc/multiqc_report.html`` from them,
  offline (``--no-version-check``) with ``assets/multiqc_config.yml`` where that file is found and a
  subtitle naming what ran (:func:`multiqc_subtitle`).
* ``report.html``: one file, no external requests (inline CSS, inline SVG drawn here, a little inline
  JS for sorting, filtering and the per-residue tracks). Sections: run summary and versions,
  refinement (ΔDockQ per method, decoy vs refined DockQ, the paper's Table 1 layout), per-decoy table
  (status, scores, Δ, a pLDDT sparkline; a click opens the decoy's per-residue track: predicted
  LDDT-Cα, true LDDT-Cα where a native was given, interface residues marked), QA ranking (the rankers
  side by side: Top-1 and Top-N hit rates, ranking loss, Spearman, AUC; then per target), failures with
  their reasons.

Per-residue data travel as compact JSON (LDDT × 100 as integers, residue numbering as runs, the
sequence as one-letter codes, interface residues as index ranges) and are drawn by the page only
when a row scrolls into view (sparkline) or is opened (track), so a large run stays small and fast.
Interface residues: the ``interface`` column of ``<id>_plddt.csv`` (egr.refine's definition).

The decoy rows sit in an inert ``<template>`` and are shown 100 per page, and sections below the first
screen use ``content-visibility: auto``, so the page of a large run loads quickly. Size, build and load
times (``benchmarks/bench_report.py``, 1,000 synthetic decoys): benchmarks/README.md, "Report".
"""

from __future__ import annotations

import csv
import hashlib
import html
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from egr import __version__, layout
from egr.evaluate import (
    AGREEMENT_HEADERS,
    CAPRI_CLASSES,
    DOCKQ_TOLERANCE,
    REFERENCE_RANKERS,
    REFINEMENT_HEADERS,
    Evaluation,
    agreement_rows,
    dockq_improved,
    evaluate_frame,
    method_deltas,
    method_label,
    qa_pivot,
    ranker_headers,
    ranker_rows,
    read_summary,
    refinement_rows,
)
from egr.io import atomic_write_text

OTHER_COLORS = ("#db2777", "#0891b2", "#65a30d", "#dc2626")
ONE_LETTER = {"ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
              "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
              "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V"}
DEFAULT_MULTIQC_CONFIG = Path(__file__).resolve().parents[1] / "assets" / "multiqc_config.yml"
# Half-width the ΔDockQ axis never goes below: scaled to changes of DockQ's rounding size (0.001), an axis
# would blow noise up into what looks like an effect.
MIN_DELTA_REACH = 0.05
IMPROVED = f"improved by more than {DOCKQ_TOLERANCE:g}"  # what FI-DockQ and the colours count (egr.evaluate)


@dataclass(frozen=True)
class RunData:
    """What the report shows: the typed summary, the run's metadata and the evaluation tables."""

    results_dir: Path
    summary: pd.DataFrame
    run_info: dict
    evaluation: Evaluation


@dataclass(frozen=True)
class ReportOutputs:
    """Files written by :func:`build_report`; ``note`` is one line on the MultiQC step."""

    html: Path
    multiqc_files: tuple[Path, ...]
    multiqc_report: Path | None
    note: str


# ------------------------------------------------------------------------------------------------
# Reading the results folder
# ------------------------------------------------------------------------------------------------


def load_run(results_dir: Path | str, score_columns: tuple[str, ...] | list[str] = (), top_n: int = 10) -> RunData:
    """Summary, run info and evaluation of ``results_dir``. Raises FileNotFoundError without summary.tsv."""
    results_dir = Path(results_dir)
    summary = read_summary(results_dir)
    info_path = next((p for p in (results_dir / "pipeline_info" / "run_info.json", results_dir / "run_info.json")
                      if p.is_file()), None)
    run_info = json.loads(info_path.read_text()) if info_path else {}
    return RunData(results_dir, summary, run_info, evaluate_frame(summary, score_columns, top_n))


def decoy_file(results_dir: Path, decoy_id: str, suffix: str) -> Path | None:
    """``<id>/<id><suffix>`` (egr run layout) or ``<id><suffix>`` (files staged side by side), if present."""
    for path in (results_dir / decoy_id / f"{decoy_id}{suffix}", results_dir / f"{decoy_id}{suffix}"):
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class Residues:
    """Per-residue rows of one decoy (file order): identifiers as str arrays, values as float arrays
    (NaN = missing); ``true_lddt`` / ``interface`` are None when the file has no such column."""

    chain: np.ndarray
    resseq: np.ndarray
    icode: np.ndarray
    resname: np.ndarray
    plddt: np.ndarray
    true_lddt: np.ndarray | None = None
    interface: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.chain)


def _floats(values: list[str]) -> np.ndarray:
    return np.array([float(v) if v.strip() else math.nan for v in values], dtype=float)


def read_residues(results_dir: Path, decoy_id: str) -> Residues | None:
    """Per-residue table of a decoy from ``<id>_plddt.csv`` (chain, resseq, icode, resname, plddt,
    interface), with the true LDDT-Cα of ``<id>_egr_dockq.json`` when a native was scored; None when
    there is no pLDDT file. Read with the csv module: for a few hundred rows it is an order of
    magnitude faster than pandas, which matters over a thousand decoys."""
    path = decoy_file(results_dir, decoy_id, layout.PLDDT_CSV)
    if path is None:
        return None
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    columns = {key: [row.get(key) or "" for row in rows] for key in rows[0]}
    residues = Residues(
        chain=np.array(columns["chain"], dtype=str),
        resseq=np.array([int(v) if v.strip().lstrip("-").isdigit() else 0 for v in columns["resseq"]]),
        icode=np.array(columns["icode"], dtype=str),
        resname=np.array(columns["resname"], dtype=str),
        plddt=_floats(columns["plddt"]),
        interface=_floats(columns["interface"]) > 0 if "interface" in columns else None,
    )
    return replace(residues, true_lddt=_true_lddt(results_dir, decoy_id, residues))


def _true_lddt(results_dir: Path, decoy_id: str, residues: Residues) -> np.ndarray | None:
    """True LDDT-Cα per residue from ``egr score``'s report of the refined structure, or None."""
    path = decoy_file(results_dir, decoy_id, layout.dockq_suffix("egr"))
    if path is None:
        return None
    try:
        scored = json.loads(path.read_text()).get("residues")
    except (OSError, ValueError):
        return None
    if not scored:
        return None
    truth = {(str(c), int(r), str(i)): (math.nan if v is None else float(v)) for c, r, i, _, v in scored}
    return np.array([truth.get(key, math.nan) for key in zip(residues.chain, residues.resseq.tolist(), residues.icode)])


def _percent(values: np.ndarray) -> list[int | None]:
    """LDDT in [0, 1] as integer percent (None = missing): 1 % resolution is finer than a plot pixel."""
    scaled = np.round(values * 100.0)
    return [None if not math.isfinite(v) else int(v) for v in scaled]


def encode_track(residues: Residues, interface: np.ndarray | None) -> dict:
    """Compact JSON of one decoy's per-residue data (see the module docstring).

    Keys: ``c`` runs ``[chain, first residue number (with insertion code as text), length]``; ``s``
    one-letter sequence; ``p`` predicted and ``t`` true LDDT-Cα × 100 (absent without a native);
    ``f`` interface residues as ``[first, last]`` index ranges."""
    chain, resseq, icode = residues.chain, residues.resseq, residues.icode
    n = len(residues)
    breaks = np.ones(n, dtype=bool)
    if n > 1:
        # a run continues while the chain stays and numbers go up by one without insertion codes
        breaks[1:] = ((chain[1:] != chain[:-1]) | (resseq[1:] != resseq[:-1] + 1)
                      | (icode[1:] != "") | (icode[:-1] != ""))
    starts = np.flatnonzero(breaks)
    lengths = np.diff(np.r_[starts, n])
    runs = [[str(chain[s]), f"{resseq[s]}{icode[s]}" if icode[s] else int(resseq[s]), int(k)]
            for s, k in zip(starts, lengths)]
    track: dict = {"c": runs, "s": "".join(ONE_LETTER.get(r, "X") for r in residues.resname),
                   "p": _percent(residues.plddt)}
    if residues.true_lddt is not None and np.isfinite(residues.true_lddt).any():
        track["t"] = _percent(residues.true_lddt)
    if interface is not None and interface.any():
        edges = np.diff(np.r_[0, interface.astype(np.int8), 0])
        track["f"] = [[int(a), int(b) - 1] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
    return track


def decoy_track(results_dir: Path, decoy_id: str) -> dict | None:
    """The encoded per-residue track of one decoy, or None when it has no per-residue file."""
    residues = read_residues(results_dir, decoy_id)
    if residues is None:
        return None
    return encode_track(residues, residues.interface)


# ------------------------------------------------------------------------------------------------
# MultiQC custom content
# ------------------------------------------------------------------------------------------------


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _finite(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _tsv_value(value: object, digits: int = 4) -> str:
    number = _finite(value)
    if number is not None:
        return f"{number:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{number:.0f}"
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).replace("\t", " ")


def _mqc_tsv(config: dict, header: list[str], rows: list[list[str]]) -> str:
    """Custom-content TSV: the section config as '# key: value' YAML comment lines (values in JSON,
    which YAML reads as flow style), then the table; the first column names the rows."""
    lines = [f"# {key}: {_json(value)}" for key, value in config.items()]
    lines.append("\t".join(header))
    lines += ["\t".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def _method_color(method: str, index: int) -> str:
    return layout.colour(method) or OTHER_COLORS[index % len(OTHER_COLORS)]


def _outcomes(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the MultiQC report shows it, which describes the results, not one invocation: a decoy
    whose complete outputs were kept from an earlier run (``skipped``) is ``ok`` there, without the reason,
    so that resuming leaves MultiQC's content, and its work, unchanged."""
    if "status" not in summary:
        return summary
    kept = summary["status"] == "skipped"
    outcome = summary.assign(status=summary["status"].mask(kept, "ok"))
    if "reason" in summary:
        outcome["reason"] = summary["reason"].mask(kept, "")
    return outcome


def _decoy_columns(run: RunData, summary: pd.DataFrame) -> list[tuple[str, dict]]:
    """(summary column, MultiQC header) of the per-decoy table, for the columns ``summary`` (the run's
    :func:`_outcomes`) has."""
    columns: list[tuple[str, dict]] = [
        ("status", {"title": "Status", "description": "ok (also where kept from an earlier run) or failed"}),
        ("target", {"title": "Target", "description": "Native structure the decoy was scored against"}),
        ("pred_dockq", {"title": "Pred. DockQ", "description": "EGR's predicted DockQ of the input decoy (its ranker)",
                        "min": 0, "max": 1, "scale": "RdYlGn", "format": "{:,.3f}"}),
        ("contacts_clashes", {"title": "Contacts − 10×clashes",
                              "description": "Reference score: inter-chain heavy-atom pairs < 5 Å "
                                             "− 10 × pairs < 3 Å",
                              "format": "{:,.0f}", "scale": False}),
        ("mean_plddt", {"title": "pLDDT", "description": "EGR's mean predicted LDDT-Cα", "min": 0, "max": 1,
                        "scale": "RdYlGn", "format": "{:,.3f}"}),
        ("interface_plddt", {"title": "Interface pLDDT", "description": "Mean predicted LDDT-Cα of interface residues",
                             "min": 0, "max": 1, "scale": "RdYlGn", "format": "{:,.3f}"}),
        ("dockq_decoy", {"title": "DockQ decoy", "description": "DockQ of the input decoy", "min": 0, "max": 1,
                         "scale": "RdYlGn", "format": "{:,.3f}"}),
    ]
    for method in run.evaluation.methods:
        label = method_label(method)
        columns.append((f"dockq_{method}", {"title": f"DockQ {label}", "description": f"DockQ after {label}",
                                            "min": 0, "max": 1, "scale": "RdYlGn", "format": "{:,.3f}"}))
        columns.append((f"delta_dockq_{method}", {"title": f"ΔDockQ {label}", "description": f"DockQ {label} − decoy",
                                                  "scale": "RdBu", "format": "{:+,.4f}",
                                                  "bars_zero_centrepoint": True}))
    columns += [
        ("lddt_pearson", {"title": "LDDT r", "description": "Pearson r of predicted vs true per-residue LDDT-Cα",
                          "min": -1, "max": 1, "scale": "RdBu", "format": "{:,.3f}"}),
        ("n_residues", {"title": "Residues", "format": "{:,.0f}", "scale": False}),
        ("seconds_total", {"title": "Seconds", "description": "EGR wall time: ingest, surface, featurize, refine",
                           "format": "{:,.2f}", "scale": False}),
        ("reason", {"title": "Reason", "description": "Why the decoy failed"}),
    ]
    return [(column, header) for column, header in columns
            if column in summary and summary[column].astype(str).ne("").any()]


def comparison_refiners(summary: pd.DataFrame) -> tuple[str, ...]:
    """The comparison refiners that ran: those that produced a structure (``status_<m>`` ok) for at least
    one decoy; one asked for but skipped everywhere (not installed) did not run."""
    return tuple(column.removeprefix("status_") for column in summary.columns
                 if column.startswith("status_") and summary[column].eq("ok").any())


def methods_ran(summary: pd.DataFrame) -> str:
    """What refined the decoys, in words: EGR alone, or EGR and the comparison refiners that ran."""
    refiners = comparison_refiners(summary)
    if not refiners:
        return "EGR only (no comparison refiner ran)"
    return f"EGR compared with {', '.join(map(method_label, refiners))}"


def multiqc_subtitle(run: RunData) -> str:
    """The MultiQC report's subtitle: the config's says nothing about the run, this one names what ran."""
    return f"EGR refinement and quality assessment: {methods_ran(run.summary)}"


def multiqc_contents(run: RunData) -> dict[str, str]:
    """File name → text of every MultiQC file of this run."""
    summary, evaluation = run.summary, run.evaluation
    ids = summary["id"].astype(str).tolist()
    files: dict[str, str] = {}
    outcome = _outcomes(summary)
    columns = _decoy_columns(run, outcome)
    rows = [[decoy, *(_tsv_value(outcome[c].iloc[i]) for c, _ in columns)] for i, decoy in enumerate(ids)]
    files["egr_decoys_mqc.tsv"] = _mqc_tsv({
        "id": "egr_decoys", "section_name": "EGR: per-decoy results",
        # the first section: it says what ran also where MultiQC runs without `egr report` (Nextflow)
        "description": f"{methods_ran(summary)}. One row per decoy: status, EGR's predicted quality and, where a "
                       "native was given, DockQ before and after each method (Δ = refined − decoy). Empty = not "
                       "computable.",
        "plot_type": "table",
        "pconfig": {"id": "egr_decoys_table", "title": "EGR: per-decoy results", "col1_header": "Decoy"},
        "headers": {c: h for c, h in columns},
    }, ["Decoy", *(c for c, _ in columns)], rows)
    methods = evaluation.methods
    categories = {method_label(m): {"name": method_label(m), "color": _method_color(m, i)}
                  for i, m in enumerate(methods)}
    deltas = {m: method_deltas(summary, m) for m in methods}
    if any(d["delta_dockq"].notna().any() for d in deltas.values()):
        data = {decoy: {method_label(m): v for m in methods
                        if (v := _finite(deltas[m]["delta_dockq"].iloc[i])) is not None}
                for i, decoy in enumerate(ids)}
        files["egr_delta_dockq_mqc.yaml"] = _json({
            "id": "egr_delta_dockq", "section_name": "EGR: ΔDockQ per method",
            "description": "DockQ after refinement − DockQ of the decoy, per decoy and refinement method "
                           f"(above +{DOCKQ_TOLERANCE:g} = improved; DockQ prints 3 decimals).",
            "plot_type": "bargraph",
            "pconfig": {"id": "egr_delta_dockq_plot", "title": "EGR: ΔDockQ per method", "ylab": "ΔDockQ",
                        "stacking": "group", "hide_zero_cats": False, "sort_samples": False, "tt_decimals": 4,
                        "cpswitch": False},
            "categories": categories,
            "data": {k: v for k, v in data.items() if v},
        }) + "\n"
        datasets = [{decoy: {"x": x, "y": y} for decoy, x, y in zip(ids, d["dockq_before"], d["dockq_after"])
                     if _finite(x) is not None and _finite(y) is not None} for d in deltas.values()]
        files["egr_dockq_scatter_mqc.yaml"] = _json({
            "id": "egr_dockq_scatter", "section_name": "EGR: DockQ before and after refinement",
            "description": "Each point a decoy: DockQ of the input (x) and after refinement (y); above the "
                           "diagonal = improved. One dataset per method.",
            "plot_type": "scatter",
            "pconfig": {"id": "egr_dockq_scatter_plot", "title": "EGR: DockQ decoy vs refined",
                        "xlab": "DockQ of the decoy", "ylab": "DockQ after refinement",
                        "xmin": 0, "xmax": 1, "ymin": 0, "ymax": 1, "square": True,
                        "data_labels": [{"name": method_label(m)} for m in methods]},
            "data": datasets,
        }) + "\n"
    plddt = {decoy: {k: v for k, c in (("pLDDT", "mean_plddt"), ("Interface pLDDT", "interface_plddt"))
                     if c in summary and (v := _finite(summary[c].iloc[i])) is not None}
             for i, decoy in enumerate(ids)}
    files["egr_plddt_mqc.yaml"] = _json({
        "id": "egr_plddt", "section_name": "EGR: predicted quality per decoy",
        "description": "EGR's mean predicted LDDT-Cα of each decoy, over all residues and over interface residues.",
        "plot_type": "bargraph",
        "pconfig": {"id": "egr_plddt_plot", "title": "EGR: predicted LDDT-Cα per decoy", "ylab": "pLDDT",
                    "ymin": 0, "ymax": 1, "stacking": "group", "hide_zero_cats": False, "cpswitch": False,
                    "tt_decimals": 3},
        "categories": {"pLDDT": {"name": "pLDDT", "color": "#2563eb"},
                       "Interface pLDDT": {"name": "Interface pLDDT", "color": "#f59e0b"}},
        "data": {k: v for k, v in plddt.items() if v},
    }) + "\n"
    if len(evaluation.refinement):
        table = evaluation.refinement
        signed = {"format": "{:+,.4f}", "scale": "RdBu", "bars_zero_centrepoint": True}
        headers = {"n": {"title": "n", "description": "Decoys with DockQ before and after", "format": "{:,.0f}",
                         "scale": False},
                   "delta_dockq": {"title": "ΔDockQ", **signed},
                   "delta_irmsd": {"title": "ΔiRMSD", **signed, "scale": "RdBu-rev"},  # lower is better
                   "delta_lrmsd": {"title": "ΔLRMSD", **signed, "scale": "RdBu-rev"},
                   "delta_fnat": {"title": "ΔFnat", **signed},
                   "fi_dockq": {"title": "FI-DockQ", "description": f"% of decoys whose DockQ {IMPROVED}",
                                "suffix": "%",
                                "min": 0, "max": 100, "format": "{:,.2f}", "scale": "Greens"},
                   "api_dockq": {"title": "API-DockQ",
                                 "description": "Mean relative DockQ improvement of the improved decoys",
                                 "suffix": "%", "format": "{:,.2f}", "scale": "Greens"},
                   "seconds": {"title": "s / decoy", "description": "Mean wall time per decoy", "format": "{:,.2f}",
                               "scale": False}}
        rows = [[f"{r['target']} · {method_label(r['method'])}", *(_tsv_value(r[c], 6) for c in headers)]
                for r in table.to_dict("records")]
        files["egr_refinement_mqc.tsv"] = _mqc_tsv({
            "id": "egr_refinement", "section_name": "EGR: refinement per target",
            "description": "Mean Δ (refined − decoy) per target and over all decoys ((all)); FI-DockQ = % of decoys "
                           f"whose DockQ {IMPROVED}; API-DockQ = mean relative DockQ improvement of those decoys.",
            "plot_type": "table",
            "pconfig": {"id": "egr_refinement_table", "title": "EGR: refinement per target",
                        "col1_header": "Target · method"},
            "headers": headers,
        }, ["Target · method", *headers], rows)
    if len(evaluation.qa):
        hits_header, hits = qa_pivot(evaluation, "hits")
        _, losses = qa_pivot(evaluation, "loss")
        n = evaluation.top_n
        header = ["Target", "Decoys", *(f"{h} top-{n}" for h in hits_header[2:]),
                  *(f"{h} loss" for h in hits_header[2:])]
        files["egr_qa_mqc.tsv"] = _mqc_tsv({
            "id": "egr_qa", "section_name": "EGR: QA ranking per target",
            "description": f"Top-{n} hit rate a/b/c (acceptable / medium / high decoys among the {n} ranked first) "
                           "and ranking loss (best DockQ − DockQ of the first-ranked decoy) per ranker.",
            "plot_type": "table",
            "pconfig": {"id": "egr_qa_table", "title": "EGR: QA ranking per target", "col1_header": "Target"},
        }, header, [[hit[0] if hit[0] != "Summary" else "(all)", hit[1], *hit[2:], *loss[2:]]
                    for hit, loss in zip(hits, losses)])
    if len(evaluation.qa_summary):
        files["egr_qa_rankers_mqc.tsv"] = _rankers_mqc(evaluation)
    versions = {"egr": run.run_info.get("egr_version", __version__), **run.run_info.get("versions", {})}
    files["egr_software_mqc_versions.yml"] = _json({"egr-nf": versions}) + "\n"
    return files


def _rankers_mqc(evaluation: Evaluation) -> str:
    """``egr_qa_rankers_mqc.tsv``: one row per ranker, the measures of :func:`egr.evaluate.ranker_rows` as
    numbers (MultiQC colours and sorts them)."""
    n = evaluation.top_n
    labels = {r.key: r.label for r in evaluation.rankers}
    count = {"format": "{:,.1f}", "min": 0, "scale": "Greens"}
    corr = {"format": "{:,.3f}", "min": -1, "max": 1, "scale": "RdBu"}
    names = {"acceptable": "acceptable (DockQ ≥ 0.23)", "medium": "medium (≥ 0.49)", "high": "high (≥ 0.80)"}
    headers = {
        "n_targets": {"title": "Targets", "description": "Targets ranked (with 2 or more decoys)", "format": "{:,.0f}",
                      "scale": False},
        **{f"top1_{c}": {"title": f"Top-1 {c[0]}", "description": f"Targets whose first-ranked decoy is {names[c]}; "
                                                                  "Random: expected number", **count}
           for c in CAPRI_CLASSES},
        **{f"targets_{c}": {"title": f"Top-{n} {c[0]}",
                            "description": f"Targets with a decoy {names[c]} among the {n} ranked first; "
                                           "Random: expected number", **count} for c in CAPRI_CLASSES},
        "ranking_loss_mean": {"title": "Loss", "description": "Ranking loss, mean over targets: best DockQ − DockQ "
                                                              "of the first-ranked decoy (lower is better)",
                              "format": "{:,.4f}", "min": 0, "scale": "RdYlGn-rev"},
        "ranking_loss_std": {"title": "Loss sd", "description": "Ranking loss, sample standard deviation",
                             "format": "{:,.4f}", "scale": False},
        "spearman": {"title": "Spearman", "description": "Spearman of score vs DockQ over all decoys pooled", **corr},
        "spearman_per_target": {"title": "Spearman / target",
                                "description": "Mean per-target Spearman (targets with ≥ 3 scored decoys)", **corr},
        "auc_acceptable": {"title": "AUC", "description": "ROC AUC for acceptable decoys (DockQ ≥ 0.23), all decoys "
                                                          "pooled, ties counted ½", "format": "{:,.3f}", "min": 0,
                           "max": 1, "scale": "RdYlGn"},
        "n_decoys": {"title": "Decoys", "description": "Decoys with a score and a DockQ (pooled measures)",
                     "format": "{:,.0f}", "scale": False},
    }
    rows = [[labels.get(r["ranker"], r["ranker"]), *(_tsv_value(r[c], 6) for c in headers)]
            for r in evaluation.qa_summary.to_dict("records")]
    return _mqc_tsv({
        "id": "egr_qa_rankers", "section_name": "EGR: QA rankers side by side",
        "description": "EGR's predicted DockQ beside references a user could compute: contacts − 10×clashes "
                       "(inter-chain heavy-atom pairs < 5 Å − 10 × pairs < 3 Å of the input decoy), input order, "
                       "a random ranking (exact expectation) and the best possible (ranked by DockQ). Empty = not "
                       "computable (e.g. a score missing from the run).",
        "plot_type": "table",
        "pconfig": {"id": "egr_qa_rankers_table", "title": "EGR: QA rankers side by side", "col1_header": "Ranker"},
        "headers": headers,
    }, ["Ranker", *headers], rows)


def write_multiqc_files(run: RunData, outdir: Path) -> list[Path]:
    """Write :func:`multiqc_contents` into ``outdir``; returns the paths."""
    paths = []
    for name, text in multiqc_contents(run).items():
        atomic_write_text(outdir / name, text)
        paths.append(outdir / name)
    return paths


def run_multiqc(files: list[Path], outdir: Path, config: Path | None = DEFAULT_MULTIQC_CONFIG,
                subtitle: str | None = None) -> tuple[Path | None, str]:
    """Build ``outdir/multiqc/multiqc_report.html`` from ``files`` when MultiQC is installed; ``subtitle``
    (:func:`multiqc_subtitle`) replaces the config's run-independent one.

    MultiQC runs in its own process: it keeps module-level state and logging of its own. Returns the
    report path (None when skipped or failed) and a one-line note."""
    if importlib.util.find_spec("multiqc") is None:
        return None, "MultiQC not installed (pip install 'egr-nf[report]'): MultiQC report skipped"
    target = outdir / "multiqc"
    command = [sys.executable, "-m", "multiqc", "--force", "--no-version-check", "--quiet", "--outdir", str(target),
               "--filename", "multiqc_report.html"]
    if config is not None and Path(config).is_file():
        command += ["--config", str(config)]
    if subtitle is not None:
        command += ["--cl-config", f"subtitle: {json.dumps(subtitle)}"]  # a JSON string is a YAML string
    command += [str(f) for f in files]
    report = target / "multiqc_report.html"
    # MultiQC takes seconds to start; a report built from the same command and bytes is kept as it is
    stamp, inputs = target / "egr_inputs.sha256", _multiqc_fingerprint(command, files, config)
    if report.is_file() and stamp.is_file() and stamp.read_text() == inputs:
        return report, f"MultiQC report unchanged: {report}"
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not report.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"MultiQC failed (exit {done.returncode}): {last}"
    atomic_write_text(stamp, inputs)
    return report, f"MultiQC report: {report}"


def _multiqc_fingerprint(command: list[str], files: list[Path], config: Path | None) -> str:
    """SHA-256 of what a MultiQC report is made from: its command line, the content files and the config."""
    digest = hashlib.sha256("\0".join(command).encode())
    for path in [*files, *([Path(config)] if config is not None and Path(config).is_file() else [])]:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------
# SVG plots (drawn here, inline in the page)
# ------------------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def nice_ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k)."""
    span = max(hi - lo, 1e-12)
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return np.arange(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1) * step


def _tick_label(value: float, step: float, signed: bool = False) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    text = f"{value:+.{decimals}f}" if signed and abs(value) > step / 1e3 else f"{value:.{decimals}f}"
    return text.replace("-", "−")


def _jitter(n: int, spread: float) -> np.ndarray:
    """Deterministic vertical offsets in [−spread, spread] (golden-ratio sequence): the same page for the same run."""
    return ((np.arange(n) * 0.6180339887) % 1.0 - 0.5) * 2.0 * spread


def _dots(xs: np.ndarray, ys: np.ndarray, color: str, radius: float, opacity: float) -> str:
    """All points of one series as a single path of zero-length round-capped segments (each renders as a
    dot): one DOM node per series instead of one per point keeps a 1,000-decoy page fast."""
    moves = "".join(f"M{x:.1f} {y:.1f}h0" for x, y in zip(xs, ys))
    return (f'<path d="{moves}" stroke="{color}" stroke-width="{2 * radius:.1f}" stroke-linecap="round" '
            f'stroke-opacity="{opacity}" fill="none"/>')


def _points_attribute(points: list[str], series: list[str]) -> str:
    """Hover data of a plot for the page's script: ``[x, y, decoy index, series, value(s)]`` per point."""
    return f' data-series="{_esc(_json(series))}" data-pts="[{",".join(points)}]"'


def svg_strips(rows: list[dict], domain: tuple[float, float], xlabel: str, signed: bool = False,
               zero_line: bool = False, width: int = 680) -> str:
    """Horizontal strip plots, one row per entry of ``rows`` (keys label, values, index = decoy row
    numbers, color, note): points (jittered), interquartile box, median bar and mean diamond on a shared
    x axis. Hovering a point names its decoy (page script)."""
    # room for the longest row label (≈ 8.4 px per character at 13 px bold)
    longest = max((len(str(r["label"])) for r in rows), default=0)
    left, right, top, row_h = max(110, int(8.4 * longest) + 24), 150, 14, 54
    height = top + row_h * len(rows) + 40
    lo, hi = domain
    plot_w = width - left - right

    def x(v: np.ndarray | float) -> np.ndarray | float:
        return left + (np.clip(v, lo, hi) - lo) / (hi - lo) * plot_w

    ticks = nice_ticks(lo, hi)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else hi - lo
    body, points = [], []
    axis_y = top + row_h * len(rows)
    for t in ticks:
        body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{axis_y}" class="grid"/>'
                    f'<text x="{x(t):.1f}" y="{axis_y + 16}" class="tick" text-anchor="middle">'
                    f'{_tick_label(t, step, signed)}</text>')
    if zero_line and lo < 0 < hi:
        body.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 4}" y2="{axis_y}" class="zero"/>')
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="axis" text-anchor="middle">'
                f'{_esc(xlabel)}</text>')
    for i, row in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        values = np.asarray(row["values"], dtype=float)
        keep = np.isfinite(values)
        values, index = values[keep], np.asarray(row["index"])[keep]
        body.append(f'<text x="{left - 12}" y="{cy + 4:.1f}" class="label" text-anchor="end">'
                    f'{_esc(row["label"])}</text>')
        if not len(values):
            body.append(f'<text x="{left + 8}" y="{cy + 4:.1f}" class="note">no values</text>')
            continue
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        color = row["color"]
        body.append(f'<rect x="{x(q1):.1f}" y="{cy - 15:.1f}" width="{max(x(q3) - x(q1), 1.5):.1f}" height="30" rx="3" '
                    f'fill="{color}" fill-opacity="0.10" stroke="{color}" stroke-opacity="0.55"/>'
                    f'<line x1="{x(median):.1f}" x2="{x(median):.1f}" y1="{cy - 15:.1f}" y2="{cy + 15:.1f}" '
                    f'stroke="{color}" stroke-width="2"/>')
        xs, ys = x(values), cy + _jitter(len(values), 11.0)
        body.append(_dots(xs, ys, color, 2.6, 0.55))
        points += [f"[{a:.1f},{b:.1f},{d},{i},{v:.4g}]" for a, b, d, v in zip(xs, ys, index, values)]
        mean = float(values.mean())
        body.append(f'<path d="M{x(mean):.1f} {cy - 6:.1f}l5 6l-5 6l-5 -6z" fill="#fff" stroke="#111" '
                    f'stroke-width="1.3"><title>mean {mean:.4f}</title></path>')
        body.append(f'<text x="{width - right + 12}" y="{cy - 2:.1f}" class="stat">{_esc(row.get("note", ""))}</text>'
                    f'<text x="{width - right + 12}" y="{cy + 13:.1f}" class="substat">n = {len(values)}</text>')
    attributes = _points_attribute(points, [str(r["label"]) for r in rows])
    return (f'<svg class="plot pts" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
            f'{attributes}>{"".join(body)}</svg>')


def svg_scatter(series: list[dict], size: int = 430) -> str:
    """DockQ of the decoy (x) vs after refinement (y) on [0, 1]², one colour per method (keys label,
    x, y, index = decoy row numbers, color); the diagonal separates improved (above) from worsened
    decoys, dashed lines mark the CAPRI classes. Hovering a point names its decoy (page script)."""
    pad_l, pad_b, pad_t, pad_r = 52, 44, 16, 16
    side = size - pad_l - pad_r

    def px(v: np.ndarray | float) -> np.ndarray | float:
        return pad_l + np.clip(v, 0, 1) * side

    def py(v: np.ndarray | float) -> np.ndarray | float:
        return pad_t + (1 - np.clip(v, 0, 1)) * side

    height = pad_t + side + pad_b
    body = [f'<path d="M{px(0)} {py(0)}L{px(0)} {py(1)}L{px(1)} {py(1)}Z" fill="#16a34a" fill-opacity="0.05"/>',
            f'<text x="{px(0.03):.1f}" y="{py(0.93):.1f}" class="region up">improved</text>',
            f'<text x="{px(0.97):.1f}" y="{py(0.05):.1f}" class="region down" text-anchor="end">worse</text>']
    for name, threshold in CAPRI_CLASSES.items():
        body.append(f'<line x1="{px(threshold):.1f}" x2="{px(threshold):.1f}" y1="{py(0)}" y2="{py(1)}" class="capri"/>'
                    f'<line x1="{px(0)}" x2="{px(1)}" y1="{py(threshold):.1f}" y2="{py(threshold):.1f}" class="capri"/>'
                    f'<text x="{px(threshold) + 3:.1f}" y="{py(0) - 4:.1f}" class="capri-label">{name}</text>')
    for t in np.linspace(0, 1, 6):
        body.append(f'<text x="{px(t):.1f}" y="{py(0) + 16:.1f}" class="tick" text-anchor="middle">{t:.1f}</text>'
                    f'<text x="{px(0) - 8:.1f}" y="{py(t) + 4:.1f}" class="tick" text-anchor="end">{t:.1f}</text>')
    body.append(f'<rect x="{px(0)}" y="{py(1)}" width="{side}" height="{side}" class="frame"/>'
                f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" class="diagonal"/>'
                f'<text x="{pad_l + side / 2:.1f}" y="{height - 6}" class="axis" text-anchor="middle">'
                f'DockQ of the decoy</text>'
                f'<text transform="translate(14 {pad_t + side / 2:.1f}) rotate(-90)" class="axis" text-anchor="middle">'
                f'DockQ after refinement</text>')
    points = []
    for k, s in enumerate(series):
        x, y = np.asarray(s["x"], dtype=float), np.asarray(s["y"], dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        xs, ys = px(x[keep]), py(y[keep])
        body.append(_dots(xs, ys, s["color"], 3.6, 0.6))
        points += [f"[{a:.1f},{b:.1f},{d},{k},{u:.4g},{v:.4g}]"
                   for a, b, d, u, v in zip(xs, ys, np.asarray(s["index"])[keep], x[keep], y[keep])]
    attributes = _points_attribute(points, [str(s["label"]) for s in series])
    return (f'<svg class="plot pts" viewBox="0 0 {size} {height}" width="{size}" height="{height}" role="img"'
            f'{attributes}>{"".join(body)}</svg>')


# ------------------------------------------------------------------------------------------------
# The HTML page
# ------------------------------------------------------------------------------------------------

CSS = """
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f5f7fb;--card:#fff;--egr:#2563eb;--true:#f97316;--iface:#f59e0b;
--good:#15803d;--bad:#b91c1c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);
background:var(--bg)}
header{background:linear-gradient(120deg,#0b1f4b,#1d4ed8 70%,#3b82f6);color:#fff;padding:26px 0 0}
.wrap{max-width:1320px;margin:0 auto;padding:0 28px}
header h1{margin:0;font-size:26px;font-weight:650;letter-spacing:-.01em}
header .meta{opacity:.85;margin-top:4px;font-size:13px}
header nav{display:flex;gap:4px;margin-top:18px;flex-wrap:wrap}
header nav a{color:#dbeafe;text-decoration:none;padding:8px 14px;border-radius:8px 8px 0 0;font-size:13px;
font-weight:550}
header nav a:hover{background:rgba(255,255,255,.12);color:#fff}
main{padding:22px 0 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 24px;margin:0 0 20px;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
section.lazy{content-visibility:auto;contain-intrinsic-size:auto 900px}
h2{font-size:18px;margin:0 0 4px;font-weight:650}
h3{font-size:14px;margin:18px 0 6px;color:#334155}
p.lead{color:var(--muted);margin:0 0 14px;max-width:980px}
.banner{background:#fff7ed;border:1px solid #fdba74;color:#9a3412;border-radius:10px;padding:10px 14px;margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:4px 0 16px}
.card{border:1px solid var(--line);border-radius:10px;padding:12px 14px;background:linear-gradient(#fff,#fbfcfe)}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:24px;font-weight:650;margin-top:2px}
.card .s{color:var(--muted);font-size:12px}
.grid2{display:flex;flex-wrap:wrap;gap:18px 28px;align-items:flex-start}
figure{margin:0}
figcaption{font-size:13px;color:#334155;font-weight:600;margin:0 0 6px}
svg.plot{max-width:100%;height:auto;font-size:12px}
svg .grid{stroke:#eef2f7}svg .zero{stroke:#94a3b8;stroke-dasharray:3 3}svg .tick{fill:#64748b;font-size:11px}
svg .axis{fill:#334155;font-size:12px}svg .label{fill:#0f172a;font-size:13px;font-weight:600}
svg .stat{fill:#0f172a;font-size:12px;font-weight:600}svg .substat{fill:#64748b;font-size:11px}svg .note{fill:#94a3b8}
svg .frame{fill:none;stroke:#cbd5e1}svg .diagonal{stroke:#334155;stroke-dasharray:5 4}
svg .capri{stroke:#cbd5e1;stroke-dasharray:2 3}svg .capri-label{fill:#94a3b8;font-size:10px}
svg .region{font-size:11px;font-weight:600}svg .up{fill:#15803d}svg .down{fill:#b91c1c}
table{border-collapse:collapse;width:100%;font-size:13px}
#decoy-table{font-size:12.5px}
#decoy-table th,#decoy-table td{padding:6px 6px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{background:#f8fafc;color:#334155;font-weight:600;position:sticky;top:0;z-index:1}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.wrap td{white-space:normal;word-break:break-word}
table.data tbody tr:hover{background:#f8fbff}
.scroll{overflow:auto;max-height:78vh;border:1px solid var(--line);border-radius:10px}
.scroll table th{border-bottom:1px solid #cbd5e1}
th[data-sort]{cursor:pointer;user-select:none}th[data-sort]:hover{color:var(--egr)}
th.asc::after{content:" \\25B2";font-size:9px}th.desc::after{content:" \\25BC";font-size:9px}
tr.main{cursor:pointer}
td.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
td.id::before{content:"\\25B8";display:inline-block;width:14px;color:#94a3b8;transition:transform .15s}
tr.open td.id::before{transform:rotate(90deg);color:var(--egr)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.b-ok{background:#dcfce7;color:#166534}.b-skipped{background:#dbeafe;color:#1e40af}.b-failed{background:#fee2e2;color:#991b1b}
.b-other{background:#f1f5f9;color:#475569}
td.q-incorrect{color:#64748b}td.q-acceptable{background:#fef9c3}td.q-medium{background:#ecfccb}
td.q-high{background:#bbf7d0;font-weight:600}
.d-up{color:var(--good);font-weight:600}.d-down{color:var(--bad);font-weight:600}.d-zero{color:#94a3b8}
.controls{display:flex;gap:10px;align-items:center;margin:0 0 10px;flex-wrap:wrap}
.controls input,.controls select{font:inherit;padding:6px 10px;border:1px solid #cbd5e1;border-radius:8px;
background:#fff}
.controls input{width:300px}.controls .count{color:var(--muted)}
.controls button{font:inherit;padding:5px 12px;border:1px solid #cbd5e1;border-radius:8px;background:#fff;
cursor:pointer}
.controls button:disabled{opacity:.4;cursor:default}
tr.detail td{background:#fbfdff;white-space:normal;padding:12px 16px 16px}
.legend{display:flex;gap:16px;font-size:12px;color:#334155;margin:2px 0 6px}
.legend i{display:inline-block;width:16px;height:3px;vertical-align:middle;margin-right:5px;border-radius:2px}
.legend i.box{height:10px;width:12px;opacity:.5}
.readout{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:#334155;min-height:18px}
dl.info{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0 0;font-size:12.5px}
dl.info dt{color:var(--muted)}dl.info dd{margin:0;word-break:break-word}
canvas.spark{display:block;width:120px;height:26px}
.muted{color:var(--muted)}.empty{color:#94a3b8;font-style:italic}
details>summary{cursor:pointer;color:var(--egr);font-weight:550;margin:8px 0}
td.ref,th.ref{color:#64748b;background:#fafafa}
td.best{font-weight:700;color:var(--good)}
tr.sum td{font-weight:650;border-top:2px solid #cbd5e1;background:#f8fafc}
tr.ref td{color:#64748b;background:#fafafa}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow:auto;font-size:12px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 30px}
.tip{position:absolute;display:none;pointer-events:none;background:#0f172a;color:#fff;font-size:12px;padding:4px 8px;
border-radius:6px;white-space:nowrap;z-index:10;box-shadow:0 2px 8px rgba(0,0,0,.2)}
"""

JS = r"""
(function () {
  const DATA = JSON.parse(document.getElementById('egr-data').textContent);
  const table = document.getElementById('decoy-table');
  if (!table) return;
  // Rows live in an inert <template>: only the current page is in the document, so a run of
  // thousands of decoys costs the browser one page of layout.
  const tbody = table.tBodies[0];
  const rows = Array.from(document.getElementById('decoy-rows').content.children);
  const ncol = table.tHead.rows[0].cells.length;
  const $ = id => document.getElementById(id);
  const q = $('filter'), st = $('status-filter'), size = $('page-size');
  const info = $('page-info'), prev = $('prev'), next = $('next');
  let visible = rows.slice(), page = 0;
  const esc = s => String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
  const per = () => +size.value || visible.length || 1;
  const isOpen = row => { const n = row.nextElementSibling; return !!(n && n.classList.contains('detail')); };

  function render() {
    const n = per(), pages = Math.max(1, Math.ceil(visible.length / n));
    page = Math.min(Math.max(page, 0), pages - 1);
    const shown = visible.slice(page * n, page * n + n);
    tbody.replaceChildren(...shown);
    rows.forEach(r => r.classList.remove('open'));
    info.textContent = visible.length
      ? `${page * n + 1}–${page * n + shown.length} of ${visible.length}` +
        (visible.length < rows.length ? ` (filtered from ${rows.length})` : '')
      : 'no decoy matches';
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    shown.forEach(r => { const c = r.querySelector('canvas.spark:not([data-drawn])'); if (c) io.observe(c); });
  }

  function filter() {
    const text = q.value.trim().toLowerCase(), s = st.value;
    visible = rows.filter(r => (!s || r.dataset.status === s) && (!text || r.dataset.search.includes(text)));
    page = 0;
    render();
  }

  // sorting: numbers by data-v (empty cells last either way), text by content
  table.tHead.addEventListener('click', e => {
    const th = e.target.closest('th');
    if (!th || !th.dataset.sort) return;
    const col = th.cellIndex, num = th.dataset.sort === 'n', dir = th.classList.contains('asc') ? -1 : 1;
    table.tHead.querySelectorAll('th').forEach(h => h.classList.remove('asc', 'desc'));
    th.classList.add(dir > 0 ? 'asc' : 'desc');
    const key = r => {
      const c = r.cells[col], v = c.dataset.v;
      if (num) return v === undefined || v === '' ? null : +v;
      return c.textContent.toLowerCase();
    };
    const keyed = rows.map(r => [key(r), r]);
    keyed.sort((a, b) => {
      const x = a[0], y = b[0];
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      return x < y ? -dir : x > y ? dir : 0;
    });
    rows.splice(0, rows.length, ...keyed.map(k => k[1]));
    filter();
  });
  q.addEventListener('input', filter);
  st.addEventListener('change', filter);
  size.addEventListener('change', () => { page = 0; render(); });
  prev.addEventListener('click', () => { page--; render(); });
  next.addEventListener('click', () => { page++; render(); });

  // residue positions: chains side by side with a small gap, as fractions of the width
  function layout(t) {
    const n = t.p.length, chains = [], ci = new Int32Array(n);
    let i = 0;
    for (const [c, , k] of t.c) {
      const last = chains[chains.length - 1];
      if (!last || last.name !== c) chains.push({name: c, start: i, end: i + k - 1}); else last.end = i + k - 1;
      i += k;
    }
    chains.forEach((c, j) => { for (let r = c.start; r <= c.end; r++) ci[r] = j; });
    const gap = chains.length > 1 ? Math.max(1, n * 0.012) : 0;
    const span = Math.max(1, n - 1 + gap * (chains.length - 1));
    return {n, chains, ci, span, pos: r => (r + ci[r] * gap) / span};
  }

  // one polyline per chain; a missing value (null) breaks the line
  function pathOf(v, L, X, Y) {
    let d = '', pen = false;
    for (let i = 0; i < L.n; i++) {
      const y = v[i];
      if (y === null || (i > 0 && L.ci[i] !== L.ci[i - 1])) { pen = false; if (y === null) continue; }
      d += (pen ? 'L' : 'M') + X(i).toFixed(1) + ' ' + Y(y).toFixed(1);
      pen = true;
    }
    return d;
  }

  function spark(c) {
    const t = DATA[+c.dataset.i];
    if (!t || !t.p) return;
    c.dataset.drawn = 1;
    const L = layout(t), dpr = window.devicePixelRatio || 1, W = 120, H = 26;
    c.width = W * dpr; c.height = H * dpr;
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    const X = i => 2 + L.pos(i) * (W - 4), Y = v => 2 + (1 - v / 100) * (H - 7);
    g.fillStyle = 'rgba(245,158,11,.55)';
    (t.f || []).forEach(([a, b]) => g.fillRect(X(a) - .5, H - 3, Math.max(1, X(b) - X(a) + 1), 3));
    const line = (v, color, width) => {
      g.strokeStyle = color; g.lineWidth = width;
      g.stroke(new Path2D(pathOf(v, L, X, Y)));
    };
    if (t.t) line(t.t, 'rgba(249,115,22,.9)', 1);
    line(t.p, '#2563eb', 1.2);
  }
  const io = new IntersectionObserver(entries => entries.forEach(e => {
    if (e.isIntersecting) { spark(e.target); io.unobserve(e.target); }
  }), {rootMargin: '300px'});

  const THREE = {A: 'ALA', R: 'ARG', N: 'ASN', D: 'ASP', C: 'CYS', Q: 'GLN', E: 'GLU', G: 'GLY', H: 'HIS', I: 'ILE',
    L: 'LEU', K: 'LYS', M: 'MET', F: 'PHE', P: 'PRO', S: 'SER', T: 'THR', W: 'TRP', Y: 'TYR', V: 'VAL', X: 'UNK'};
  function labels(t) {
    const out = [];
    for (const [c, s, k] of t.c) for (let j = 0; j < k; j++) out.push(c + ' ' + (typeof s === 'number' ? s + j : s));
    return out;
  }

  // the per-residue track of one decoy, as SVG, with a readout under the pointer
  function track(box, t) {
    const L = layout(t), W = Math.max(700, Math.min(1240, (table.parentElement.clientWidth || 1130) - 40));
    const H = 210, l = 46, r = 14, top = 24, bottom = 40, pw = W - l - r, ph = H - top - bottom;
    const X = i => l + L.pos(i) * pw, Y = v => top + (1 - v / 100) * ph, rw = Math.max(pw / L.span, 1);
    const iface = new Uint8Array(L.n);
    (t.f || []).forEach(([a, z]) => { for (let i = a; i <= z; i++) iface[i] = 1; });
    const s = [`<svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`];
    L.chains.forEach((c, j) => {
      const x0 = X(c.start) - rw / 2, x1 = X(c.end) + rw / 2;
      s.push(`<rect x="${x0}" y="${top}" width="${x1 - x0}" height="${ph}" fill="${j % 2 ? '#f8fafc' : '#fff'}"
        stroke="#e2e8f0"/><text x="${(x0 + x1) / 2}" y="${top - 8}" text-anchor="middle" class="label">chain
        ${esc(c.name)}</text>`);
    });
    [0, 25, 50, 75, 100].forEach(v => s.push(`<line x1="${l}" x2="${l + pw}" y1="${Y(v)}" y2="${Y(v)}" class="grid"/>
      <text x="${l - 6}" y="${Y(v) + 4}" text-anchor="end" class="tick">${(v / 100).toFixed(2)}</text>`));
    (t.f || []).forEach(([a, z]) => {
      const x0 = X(a) - rw / 2, x1 = X(z) + rw / 2;
      s.push(`<rect x="${x0}" y="${top}" width="${x1 - x0}" height="${ph}" fill="#f59e0b" fill-opacity=".13"/>
        <rect x="${x0}" y="${top + ph + 3}" width="${x1 - x0}" height="6" fill="#f59e0b"/>`);
    });
    if (t.t) s.push(`<path d="${pathOf(t.t, L, X, Y)}" fill="none" stroke="#f97316" stroke-width="1.4"
      stroke-opacity=".9"/>`);
    s.push(`<path d="${pathOf(t.p, L, X, Y)}" fill="none" stroke="#2563eb" stroke-width="1.7"/>
      <text x="${l + pw / 2}" y="${H - 6}" text-anchor="middle" class="axis">residue (chains in file order;
      amber = interface residue)</text><line class="cur" x1="0" x2="0" y1="${top}" y2="${top + ph}" stroke="#0f172a"
      stroke-opacity=".35" visibility="hidden"/></svg>`);
    const legend = '<div class="legend"><span><i style="background:#2563eb"></i>predicted LDDT-Cα</span>' +
      (t.t ? '<span><i style="background:#f97316"></i>true LDDT-Cα</span>'
           : '<span class="muted">true LDDT-Cα not available (it comes with a native)</span>') +
      '<span><i class="box" style="background:#f59e0b"></i>interface residue (heavy atom ≤ 8 Å from another chain)' +
      '</span></div>';
    box.innerHTML = legend + s.join('') + '<div class="readout">&nbsp;</div>';
    const svg = box.querySelector('svg'), cur = svg.querySelector('.cur'), out = box.querySelector('.readout');
    const names = labels(t), xs = Array.from({length: L.n}, (_, i) => X(i));
    const f = v => v === null ? '–' : (v / 100).toFixed(2);
    svg.addEventListener('mousemove', e => {
      const R = svg.getBoundingClientRect(), x = (e.clientX - R.left) * W / R.width;
      let lo = 0, hi = L.n - 1;
      while (lo < hi) { const m = (lo + hi) >> 1; if (xs[m] < x) lo = m + 1; else hi = m; }
      if (lo > 0 && x - xs[lo - 1] < xs[lo] - x) lo--;
      cur.setAttribute('x1', xs[lo]); cur.setAttribute('x2', xs[lo]); cur.setAttribute('visibility', 'visible');
      out.textContent = `${names[lo]} ${THREE[t.s[lo]] || 'UNK'}   predicted ${f(t.p[lo])}` +
        (t.t ? `   true ${f(t.t[lo])}` : '') + (iface[lo] ? '   interface' : '');
    });
    svg.addEventListener('mouseleave', () => cur.setAttribute('visibility', 'hidden'));
  }

  function open(row) {
    const t = DATA[+row.dataset.i] || {}, d = document.createElement('tr');
    d.className = 'detail';
    const lines = (t.i || []).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('') +
      ((t.l || []).length
        ? `<dt>files</dt><dd>${t.l.map(([n, h]) => `<a href="${esc(h)}">${esc(n)}</a>`).join(' · ')}</dd>` : '');
    const empty = t.p ? '' : '<span class="empty">no per-residue data for this decoy</span>';
    d.innerHTML = `<td colspan="${ncol}"><div class="trackbox">${empty}</div><dl class="info">${lines}</dl></td>`;
    row.after(d);
    row.classList.add('open');
    if (t.p) track(d.querySelector('.trackbox'), t);
  }
  tbody.addEventListener('click', e => {
    if (e.target.closest('a')) return;
    const row = e.target.closest('tr.main');
    if (!row) return;
    if (isOpen(row)) { row.nextElementSibling.remove(); row.classList.remove('open'); } else open(row);
  });
  render();

  // open the first decoy with a track once the table is on screen (not at load: that would force layout early)
  const first = rows.find(r => DATA[+r.dataset.i].t) || rows.find(r => DATA[+r.dataset.i].p);
  if (first) {
    const seen = new IntersectionObserver(entries => {
      if (!entries.some(e => e.isIntersecting)) return;
      seen.disconnect();
      if (first.isConnected && !isOpen(first)) open(first);
    });
    seen.observe(table);
  }

  // plots: hover names the nearest decoy, a click opens it in the table
  const tip = document.createElement('div');
  tip.className = 'tip';
  document.body.appendChild(tip);
  const fmt = v => (Math.abs(v) < 1 && v !== 0 ? v.toFixed(4) : v.toFixed(3)).replace('-', '−');
  document.querySelectorAll('svg.pts').forEach(svg => {
    const pts = JSON.parse(svg.dataset.pts), names = JSON.parse(svg.dataset.series), vb = svg.viewBox.baseVal;
    const near = e => {
      const R = svg.getBoundingClientRect();
      const x = (e.clientX - R.left) * vb.width / R.width, y = (e.clientY - R.top) * vb.height / R.height;
      let best = null, bd = 64;
      for (const p of pts) { const d = (p[0] - x) ** 2 + (p[1] - y) ** 2; if (d < bd) { bd = d; best = p; } }
      return best;
    };
    svg.addEventListener('mousemove', e => {
      const p = near(e);
      if (!p) { tip.style.display = 'none'; svg.style.cursor = ''; return; }
      const value = p.length > 5 ? fmt(p[4]) + ' → ' + fmt(p[5]) : fmt(p[4]);
      tip.textContent = `${DATA[p[2]].id} · ${names[p[3]]}: ${value}`;
      tip.style.display = 'block';
      tip.style.left = (e.pageX + 12) + 'px';
      tip.style.top = (e.pageY + 12) + 'px';
      svg.style.cursor = 'pointer';
    });
    svg.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    svg.addEventListener('click', e => {
      const p = near(e);
      if (!p) return;
      q.value = ''; st.value = '';
      filter();
      const at = visible.findIndex(r => +r.dataset.i === p[2]);
      page = Math.floor(at / per());
      render();
      const row = visible[at];
      if (!isOpen(row)) open(row);
      row.scrollIntoView({block: 'center'});
    });
  });
})();
"""


def _fmt_num(value: object, digits: int = 3) -> str:
    number = _finite(value)
    return "" if number is None else f"{number:.{digits}f}"


def _num_cell(value: object, digits: int = 3, klass: str = "", text: str | None = None) -> str:
    """A sortable numeric cell (``data-v`` holds the value; empty when not computable). Styling sits on
    the cell itself, not on inner elements: a 1,000-row table stays light for the browser."""
    number = _finite(value)
    if number is None:
        return '<td class="num"></td>'
    shown = text if text is not None else f"{number:.{digits}f}"
    return f'<td class="num {klass}" data-v="{number:.6g}">{shown}</td>'


def _capri_class(dockq: float) -> str:
    names = [name for name, threshold in CAPRI_CLASSES.items() if dockq >= threshold]
    return names[-1] if names else "incorrect"


def _dockq_cell(value: object) -> str:
    number = _finite(value)
    return _num_cell(number, klass=f"q q-{_capri_class(number)}" if number is not None else "")


def _delta_cell(value: object, digits: int = 4) -> str:
    number = _finite(value)
    if number is None:
        return '<td class="num"></td>'
    # a worsening beyond the tolerance is an improvement of −Δ
    klass = "d-up" if dockq_improved(number) else "d-down" if dockq_improved(-number) else "d-zero"
    # rounding, then + 0.0, turns -0.0 and -0.00001 into 0.0: no "−0.0000" for an unchanged decoy
    return _num_cell(number, klass=klass, text=f"{round(number, digits) + 0.0:+.{digits}f}".replace("-", "−"))


def _badge(status: str) -> str:
    klass = status if status in ("ok", "skipped", "failed") else "other"
    return f'<span class="badge b-{klass}">{_esc(status or "?")}</span>'


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None, wrap: bool = False) -> str:
    """A plain HTML table of escaped cells; ``wrap`` lets long text (reasons, paths) break across lines."""
    classes = classes or [""] * len(headers)
    head = "".join(f'<th class="{c}">{_esc(h)}</th>' for h, c in zip(headers, classes))
    body = "".join("<tr>" + "".join(f'<td class="{c}">{_esc(v)}</td>' for v, c in zip(row, classes)) + "</tr>"
                   for row in rows)
    return f'<table class="data{" wrap" if wrap else ""}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _column(summary: pd.DataFrame, name: str) -> pd.Series:
    return summary[name] if name in summary else pd.Series("", index=summary.index)


def _overview(run: RunData) -> str:
    summary, evaluation = run.summary, run.evaluation
    counts = evaluation.status_counts
    targets = sorted(t for t in _column(summary, "target").astype(str).unique() if t)
    ok = summary["status"].isin(["ok", "skipped"])
    plddt = pd.to_numeric(_column(summary, "mean_plddt")[ok], errors="coerce")
    cards = [("Decoys", f"{len(summary):,}",
              f"{counts['ok']} ok · {counts['skipped']} skipped · {counts['failed']} failed"),
             ("Targets with a native", f"{len(targets):,}", ", ".join(targets[:4]) + (" …" if len(targets) > 4 else "")
              if targets else "no natives given"),
             ("Mean pLDDT", _fmt_num(plddt.mean()) or "–", "EGR's predicted LDDT-Cα, mean over decoys")]
    overall = evaluation.refinement[evaluation.refinement["target"] == "(all)"]
    for row in overall[overall["n"] > 0].itertuples(index=False):
        cards.append((f"ΔDockQ {method_label(row.method)}", f"{round(row.delta_dockq, 4) + 0.0:+.4f}".replace("-", "−")
                      if _finite(row.delta_dockq) is not None else "–",
                      f"FI-DockQ {_fmt_num(row.fi_dockq, 1)}% of {row.n} decoys" if row.n else "not scored"))
    html_cards = "".join(f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div>'
                         f'<div class="s">{_esc(s)}</div></div>' for k, v, s in cards)
    values = {c: pd.to_numeric(_column(summary, c), errors="coerce").to_numpy(dtype=float)
              for c in ("mean_plddt", "interface_plddt")}
    medians = {c: _fmt_num(np.nanmedian(v)) if np.isfinite(v).any() else "–" for c, v in values.items()}
    index = np.arange(len(summary))
    strips = svg_strips([
        {"label": "mean pLDDT", "values": values["mean_plddt"], "index": index, "color": "#2563eb",
         "note": f"median {medians['mean_plddt']}"},
        {"label": "interface pLDDT", "values": values["interface_plddt"], "index": index, "color": "#f59e0b",
         "note": f"median {medians['interface_plddt']}"},
    ], (0.0, 1.0), "predicted LDDT-Cα (decoy mean)")
    return (f'<section id="overview"><h2>Overview</h2><div class="cards">{html_cards}</div>'
            f'<figure><figcaption>Predicted quality per decoy</figcaption>{strips}</figure></section>')


def _refinement_section(run: RunData) -> str:
    evaluation, summary = run.evaluation, run.summary
    intro = ('<h2>Refinement</h2><p class="lead">DockQ of each refined structure against the native, compared with the '
             f'input decoy: Δ = refined − decoy. FI-DockQ = share of decoys whose DockQ {IMPROVED} (DockQ\'s '
             'printed precision; smaller changes are grey, not green or red); API-DockQ = mean relative improvement '
             'of those decoys. Empty cells could not be computed.</p>')
    if not len(evaluation.refinement):
        return (f'<section id="refinement" class="lazy">{intro}<p class="empty">No DockQ scores in this run: give '
                'native structures (samplesheet column <code>native</code> or <code>--natives</code>) to compare '
                'refiners.</p></section>')
    index = np.arange(len(summary))
    deltas = {m: method_deltas(summary, m) for m in evaluation.methods}
    finite = np.concatenate([d["delta_dockq"].to_numpy(dtype=float) for d in deltas.values()])
    finite = finite[np.isfinite(finite)]
    reach = max(float(np.abs(finite).max()) * 1.08 if len(finite) else 0.0, MIN_DELTA_REACH)
    overall = evaluation.refinement[evaluation.refinement["target"] == "(all)"].set_index("method")
    strip_rows, scatter = [], []
    for i, method in enumerate(evaluation.methods):
        color = _method_color(method, i)
        fi = overall["fi_dockq"].get(method, np.nan) if len(overall) else np.nan
        note = f"improved {_fmt_num(fi, 1)}%" if _finite(fi) is not None else "not scored"
        strip_rows.append({"label": method_label(method), "values": deltas[method]["delta_dockq"].to_numpy(dtype=float),
                           "index": index, "color": color, "note": note})
        scatter.append({"label": method_label(method), "x": deltas[method]["dockq_before"],
                        "y": deltas[method]["dockq_after"], "index": index, "color": color})
    legend = "".join(f'<span><i style="background:{s["color"]}"></i>{_esc(s["label"])}</span>' for s in scatter)
    rows = refinement_rows(evaluation)
    pooled = [r for r in rows if r[0] == "(all)"]
    per_target = [r for r in rows if r[0] != "(all)"]
    classes = ["", "", "num", "num", "num", "num", "num", "num", "num", "num"]
    tables = _table(REFINEMENT_HEADERS, pooled, classes)
    if per_target:
        tables += (f'<details{" open" if len(per_target) <= 12 else ""}><summary>Per target '
                   f'({len(per_target)} rows)</summary>{_table(REFINEMENT_HEADERS, per_target, classes)}</details>')
    return (f'<section id="refinement" class="lazy">{intro}<div class="grid2">'
            f'<figure><figcaption>ΔDockQ per method (box = middle half, ◇ = mean; the axis fits the data but spans '
            f'at least ±{MIN_DELTA_REACH:g}, so changes of DockQ\'s rounding size stay near zero)</figcaption>'
            f'{svg_strips(strip_rows, (-reach, reach), "ΔDockQ = refined − decoy", signed=True, zero_line=True)}'
            f'</figure>'
            f'<figure><figcaption>DockQ: decoy vs refined</figcaption><div class="legend">{legend}</div>'
            f'{svg_scatter(scatter)}</figure></div><h3>All decoys (paper Table 1 layout)</h3>{tables}</section>')


def _decoy_table(run: RunData, data: list[dict]) -> str:
    summary, methods = run.summary, run.evaluation.methods
    short = {m: layout.short_label(m) for m in methods}
    has_target = _column(summary, "target").astype(str).ne("").any()
    headers = [("Decoy", "s", "", ""), *([("Target", "s", "", "")] if has_target else []), ("Status", "s", "", ""),
               ("pLDDT", "n", "num", "EGR's mean predicted LDDT-Cα"),
               ("Interface", "n", "num", "EGR's mean predicted LDDT-Cα of interface residues")]
    has_dockq = "dockq_decoy" in summary
    if has_dockq:
        headers += [("DockQ decoy", "n", "num", "DockQ of the input decoy (colour: CAPRI class)")]
        headers += [(f"DockQ {short[m]}", "n", "num", f"DockQ after {method_label(m)}") for m in methods[:1]]
        headers += [(f"Δ{short[m]}", "n", "num", f"DockQ after {method_label(m)} − DockQ of the decoy")
                    for m in methods]
    if "lddt_pearson" in summary:
        headers += [("LDDT r", "n", "num", "Pearson r of predicted vs true per-residue LDDT-Cα")]
    headers += [("Residues", "n", "num", ""), ("Time (s)", "n", "num", "EGR wall time: ingest to refinement"),
                ("Per residue", "", "", "predicted LDDT-Cα (blue), true LDDT-Cα (orange), interface residues (amber)")]
    deltas = {m: method_deltas(summary, m)["delta_dockq"].to_numpy(dtype=float) for m in methods}
    head = "".join(f'<th class="{c}"' + (f' data-sort="{s}"' if s else "") + (f' title="{_esc(t)}"' if t else "")
                   + f">{_esc(h)}</th>" for h, s, c, t in headers)
    body = []
    for i, record in enumerate(summary.to_dict("records")):
        decoy, status = str(record["id"]), str(record.get("status", ""))
        target = str(record.get("target", ""))
        search = " ".join([decoy, target, status, str(record.get("reason", ""))]).lower()
        cells = [f'<td class="id" title="{_esc(record.get("input", ""))}">{_esc(decoy)}</td>',
                 *([f"<td>{_esc(target)}</td>"] if has_target else []),
                 f'<td title="{_esc(record.get("reason", ""))}">{_badge(status)}</td>',
                 _num_cell(record.get("mean_plddt")), _num_cell(record.get("interface_plddt"))]
        if has_dockq:
            cells.append(_dockq_cell(record.get("dockq_decoy")))
            cells += [_dockq_cell(record.get(f"dockq_{m}")) for m in methods[:1]]
            cells += [_delta_cell(deltas[m][i]) for m in methods]
        if "lddt_pearson" in summary:
            cells.append(_num_cell(record.get("lddt_pearson"), 2))
        cells += [_num_cell(record.get("n_residues"), 0), _num_cell(record.get("seconds_total"), 2),
                  f'<td><canvas class="spark" data-i="{i}" width="120" height="26"></canvas></td>'
                  if "p" in data[i] else '<td class="empty">–</td>']
        body.append(f'<tr class="main" data-i="{i}" data-status="{_esc(status)}" data-search="{_esc(search)}">'
                    + "".join(cells) + "</tr>")
    statuses = "".join(f'<option value="{s}">{s}</option>' for s in ("ok", "skipped", "failed")
                       if run.evaluation.status_counts.get(s))
    sizes = "".join(f'<option value="{n}"{" selected" if n == 100 else ""}>{f"{n} per page" if n else "all"}</option>'
                    for n in (50, 100, 500, 0))
    return (f'<section id="decoys" class="lazy"><h2>Decoys</h2><p class="lead">One row per decoy. Click a row for its '
            f'per-residue track (predicted LDDT-Cα, true LDDT-Cα where a native was given, interface residues) and '
            f'details; click a column header to sort. Δ = DockQ after the method − DockQ of the decoy.</p>'
            f'<div class="controls">'
            f'<input id="filter" type="search" placeholder="Filter by decoy, target, status, reason…">'
            f'<select id="status-filter"><option value="">all statuses</option>{statuses}</select>'
            f'<select id="page-size">{sizes}</select><button id="prev" type="button">‹ previous</button>'
            f'<span class="count" id="page-info">{len(summary)} decoys</span>'
            f'<button id="next" type="button">next ›</button></div>'
            f'<div class="scroll"><table class="data" id="decoy-table"><thead><tr>{head}</tr></thead><tbody></tbody>'
            f'</table></div><template id="decoy-rows">{"".join(body)}</template></section>')


def _qa_section(run: RunData) -> str:
    evaluation = run.evaluation
    n = evaluation.top_n
    intro = (f'<h2>QA ranking</h2><p class="lead">How well each score ranks a target\'s decoys, EGR\'s '
             f'predicted DockQ beside references a user could compute: contacts − 10×clashes (inter-chain '
             f'heavy-atom pairs &lt; 5 Å − 10 × pairs &lt; 3 Å of the input decoy), the input order, a random '
             f'ranking (expected value) and the best possible (ranked by DockQ); grey rows and columns are these '
             f'references. Top-1 / Top-{n} a/b/c: targets whose first / first {n} ranked decoys hold an '
             f'acceptable-or-better / medium-or-better / high decoy (DockQ ≥ 0.23 / 0.49 / 0.80). Ranking loss: '
             f'best DockQ among the decoys − DockQ of the decoy ranked first. Spearman (score vs DockQ) and AUC '
             f'(acceptable vs not, ties ½) pool all decoys; the per-target Spearman is the mean over targets with '
             f'≥ 3 scored decoys.</p>')
    if not len(evaluation.qa):
        return (f'<section id="qa" class="lazy">{intro}<p class="empty">No QA ranking: it needs decoys scored against '
                f'a native, several per target.</p>{_agreement(run)}</section>')
    classes = ["", *["num"] * (len(ranker_headers(n)) - 1)]
    head = "".join(f'<th class="{c}">{_esc(h)}</th>' for h, c in zip(ranker_headers(n), classes))
    body = "".join(f'<tr class="{"ref" if key in REFERENCE_RANKERS else ""}">' + "".join(
        f'<td class="{c}">{_esc(v)}</td>' for v, c in zip(cells, classes)) + "</tr>"
        for key, cells in ranker_rows(evaluation))
    parts = ['<h3>Rankers side by side (paper Tables 2–3 "Summary", and over all decoys)</h3>'
             f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>']
    reference = set(REFERENCE_RANKERS.values())
    targets = evaluation.qa["target"].nunique()
    pivots = []
    for what, title in (("hits", f"Top-{n} hit rate per target"), ("top1", "Top-1 hit per target"),
                        ("loss", "Ranking loss per target (lower is better)")):
        headers, rows = qa_pivot(evaluation, what)
        classes = ["", "num", *("num ref" if h in reference else "num" for h in headers[2:])]
        pivots.append(f"<h3>{title}</h3>{_pivot_table(headers, rows, classes, what)}")
    parts.append(f'<details{" open" if targets <= 15 else ""}><summary>Per target ({targets} targets)</summary>'
                 f'{"".join(pivots)}</details>')
    return f'<section id="qa" class="lazy">{intro}{"".join(parts)}{_agreement(run)}</section>'


def _pivot_table(headers: list[str], rows: list[list[str]], classes: list[str], what: str) -> str:
    """QA pivot with the best non-reference score per target in bold green (lowest loss)."""
    head = "".join(f'<th class="{c}">{_esc(h)}</th>' for h, c in zip(headers, classes))
    body = []
    for row in rows:
        cells = [_esc(v) for v in row]
        klass = [*classes]
        if what == "loss" and row[0] != "Summary":
            scores = [(_finite(v), j) for j, v in enumerate(row) if j >= 2 and "ref" not in classes[j]]
            scores = [(v, j) for v, j in scores if v is not None]
            if scores:
                best = min(v for v, _ in scores)
                for v, j in scores:
                    if v == best:
                        klass[j] += " best"
        if len(row) > 2 and row[2].startswith("single decoy"):
            body.append(f'<tr><td>{cells[0]}</td><td class="num">{cells[1]}</td>'
                        f'<td class="empty" colspan="{len(row) - 2}">{cells[2]}</td></tr>')
            continue
        tr = ' class="sum"' if row[0] == "Summary" else ""
        body.append(f"<tr{tr}>" + "".join(f'<td class="{c}">{v}</td>' for v, c in zip(cells, klass)) + "</tr>")
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _agreement(run: RunData) -> str:
    rows = agreement_rows(run.evaluation)
    if not rows:
        return ""
    classes = ["", "num", "num", "num", "num", "num", "num"]
    pooled = [r for r in rows if r[0] == "(all)"]
    per_target = [r for r in rows if r[0] != "(all)"]
    details = (f'<details{" open" if len(per_target) <= 15 else ""}><summary>Per target ({len(per_target)} targets)'
               f'</summary>{_table(AGREEMENT_HEADERS, per_target, classes)}</details>') if per_target else ""
    return ("<h3>Predicted vs true LDDT-Cα (per-decoy statistics, mean over decoys)</h3>"
            + _table(AGREEMENT_HEADERS, pooled, classes) + details)


def _failures(run: RunData) -> str:
    summary = run.summary
    status = _column(summary, "status").astype(str)
    failed = summary[status == "failed"]
    parts = []
    if len(failed):
        parts.append(f"<h3>Failed decoys ({len(failed)})</h3>" + _table(
            ["Decoy", "Input", "Reason"],
            [[r["id"], r.get("input", ""), r.get("reason", "")] for r in failed.to_dict("records")], wrap=True))
    method_rows = []
    for method in run.evaluation.methods:
        column = f"status_{method}"
        if column not in summary:
            continue
        bad = summary[(summary[column].astype(str) != "") & (summary[column].astype(str) != "ok")]
        method_rows += [[r["id"], method_label(method), r[column], str(r.get(f"reason_{method}", ""))]
                        for r in bad.to_dict("records")]
    if method_rows:
        parts.append(f"<h3>Refiners that did not run or failed ({len(method_rows)})</h3>"
                     + _table(["Decoy", "Method", "Status", "Reason"], method_rows, wrap=True))
    notes = summary[_column(summary, "score_notes").astype(str) != ""]
    if len(notes):
        parts.append(f"<h3>Scoring notes ({len(notes)})</h3>"
                     + _table(["Decoy", "Note"], [[r["id"], r["score_notes"]] for r in notes.to_dict("records")],
                              wrap=True))
    warned = summary[_column(summary, "warnings").astype(str) != ""]
    if len(warned):
        table = _table(["Decoy", "Warnings"], [[r["id"], r["warnings"]] for r in warned.to_dict("records")], wrap=True)
        parts.append(f"<details><summary>Input warnings ({len(warned)} decoys)</summary>{table}</details>")
    if run.evaluation.notes:
        items = "".join(f"<li>{_esc(n)}</li>" for n in run.evaluation.notes)
        parts.append(f"<h3>Evaluation notes</h3><ul>{items}</ul>")
    body = "".join(parts) or '<p class="empty">No failures.</p>'
    return f'<section id="failures" class="lazy"><h2>Failures and notes</h2>{body}</section>'


def _versions(run: RunData) -> str:
    info = run.run_info
    model = info.get("model", {})
    options = info.get("options", {})
    backends = _column(run.summary, "surface_backend").astype(str).str.split(",").explode().str.split(":").str[-1]
    backend_counts = ", ".join(f"{b} ({n})" for b, n in backends[backends != ""].value_counts().items())
    rows = [["egr (run)", info.get("egr_version", "unknown")],
            *[[k, v] for k, v in info.get("versions", {}).items()],
            ["model", model.get("description", model.get("path", "unknown"))],
            ["model weights sha256", model.get("sha256", "")],
            ["model trained", str(model.get("trained", "unknown"))],
            ["device", options.get("device", "")],
            ["refiners", ", ".join(options.get("refiners", []) or [])],
            ["surface backend (chains)", backend_counts],
            ["run started", info.get("started", "")],
            ["report", f"egr {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S %z')}"]]
    rows = [[k, str(v)] for k, v in rows if v not in ("", None)]
    details = (f"<details><summary>All run options (pipeline_info/run_info.json)</summary>"
               f"<pre>{_esc(json.dumps(options, indent=2, default=str))}</pre></details>") if options else ""
    table = _table(["", ""], rows, wrap=True)
    return f'<section id="versions" class="lazy"><h2>Run and versions</h2>{table}{details}</section>'


def _info_pairs(record: dict, methods: tuple[str, ...]) -> list[list[str]]:
    """Detail lines of one decoy shown under its track."""
    pairs = [["input", record.get("input", "")]]
    for key, label in (("reason", "reason"), ("warnings", "warnings"), ("score_notes", "scoring notes")):
        if str(record.get(key, "") or ""):
            pairs.append([label, str(record[key])])
    for method in methods:
        status = str(record.get(f"status_{method}", "") or "")
        if status:
            seconds = _finite(record.get(f"seconds_{method}"))
            reason = str(record.get(f"reason_{method}", "") or "")
            timing = f", {seconds:.1f} s" if seconds is not None and status == "ok" else ""
            pairs.append([method_label(method), status + timing + (f": {reason}" if reason else "")])
    for key in ("lddt_pearson", "lddt_spearman", "lddt_mae", "true_lddt_mean", "rmsd_to_input"):
        if _finite(record.get(key)) is not None:
            pairs.append([key.replace("_", " "), f"{float(record[key]):.4f}"])
    return [[k, str(v)] for k, v in pairs if str(v)]


def page_data(run: RunData, outdir: Path) -> list[dict]:
    """Per decoy, in summary order: ID, encoded track (when its per-residue file exists), detail lines and
    links relative to ``outdir``."""
    data = []
    for record in run.summary.to_dict("records"):
        decoy = str(record["id"])
        entry = {"id": decoy, **(decoy_track(run.results_dir, decoy) or {})}
        entry["i"] = _info_pairs(record, run.evaluation.methods)
        links = [(suffix.strip("_"), decoy_file(run.results_dir, decoy, suffix))
                 for suffix in (layout.REFINED_PDB, layout.PLDDT_CSV, layout.dockq_suffix("egr"), layout.SCORES_JSON)]
        entry["l"] = [[name, os.path.relpath(path, outdir)] for name, path in links if path is not None]
        data.append(entry)
    return data


def render_html(run: RunData, data: list[dict]) -> str:
    """The whole page as one string (see the module docstring)."""
    info = run.run_info
    model = info.get("model", {})
    banner = ""
    if model.get("trained") is False:
        banner = ('<div class="banner"><b>Untrained weights.</b> This run used EGR\'s near-identity initialisation: '
                  'coordinates barely move and predicted LDDT is not informative. Use trained weights '
                  '(<code>--weights</code>) for real results.</div>')
    started = info.get("started", "")
    meta = " · ".join(x for x in (f"results: {run.results_dir}", f"started {started}" if started else "",
                                  f"egr {info.get('egr_version', __version__)}") if x)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (("overview", "Overview"), ("refinement", "Refinement"),
                                                         ("decoys", "Decoys"), ("qa", "QA ranking"),
                                                         ("failures", "Failures"), ("versions", "Versions")))
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).replace("</", "<\\/")
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>EGR report · {_esc(run.results_dir.name)}</title><style>{CSS}</style></head><body>",
        f'<header><div class="wrap"><h1>EGR refinement report</h1><div class="meta">{_esc(meta)}</div>',
        f"<nav>{nav}</nav></div></header>",
        f'<main class="wrap">{banner}{_overview(run)}{_refinement_section(run)}{_decoy_table(run, data)}',
        f"{_qa_section(run)}{_failures(run)}{_versions(run)}</main>",
        f"<footer>egr-nf {__version__} · one self-contained file: no external resources</footer>",
        f'<script id="egr-data" type="application/json">{payload}</script><script>{JS}</script></body></html>',
    ])


def build_report(results_dir: Path | str, outdir: Path | str | None = None,
                 score_columns: tuple[str, ...] | list[str] = (), top_n: int = 10, multiqc: bool = True,
                 multiqc_config: Path | None = DEFAULT_MULTIQC_CONFIG) -> ReportOutputs:
    """Write the MultiQC files and ``report.html`` of ``results_dir`` into ``outdir`` (default: the
    results folder), then run MultiQC on them when ``multiqc`` and it is installed."""
    results_dir = Path(results_dir)
    outdir = Path(outdir) if outdir is not None else results_dir
    outdir.mkdir(parents=True, exist_ok=True)
    run = load_run(results_dir, score_columns, top_n)
    files = write_multiqc_files(run, outdir)
    page = outdir / "report.html"
    atomic_write_text(page, render_html(run, page_data(run, outdir)))
    report, note = (run_multiqc(files, outdir, multiqc_config, multiqc_subtitle(run)) if multiqc
                    else (None, "MultiQC report not requested"))
    return ReportOutputs(page, tuple(files), report, note)
