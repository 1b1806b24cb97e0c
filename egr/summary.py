"""``summary.tsv``: one row per decoy, built from the per-decoy files of a results folder.

``egr run`` writes it at the end of a run and ``egr evaluate`` rebuilds it (the Nextflow EVALUATE
step), so both produce the same table from the same files. Files read, next to ``<id>_scores.json``
(in ``<id>/`` for ``egr run``, or all in one folder as Nextflow stages them):

- ``<id>_scores.json``: status, reason, EGR's predicted DockQ of the input decoy (``pred_dockq``) and of
  its refined structure (``pred_dockq_refined``), pLDDT, the reference physics score ``contacts_clashes``
  (inter-chain heavy-atom pairs < 5 Å − 10 × pairs < 3 Å, :mod:`egr.physics`) with its two counts
  ``inter_chain_contacts`` and ``inter_chain_clashes``, seconds per step (``egr refine`` / a failed decoy);
- ``<id>_plddt.csv``: per-residue predicted LDDT-Cα;
- ``<id>_<method>.json``: a comparison refiner's result (status, reason, seconds);
- ``<id>_<method>_dockq.json``: ``egr score --json`` of that method's structure against the native,
  with method ``decoy`` (the cleaned input), ``egr`` or a refiner; or ``{"error": ...}``;
- ``<id>_selection.json`` (``egr run --select``, :mod:`egr.select`): the method chosen, in ``selected``
  with its prediction ``pred_dockq_selected``; where the chosen structure was scored, its DockQ-family
  columns and Δs are copied as ``<metric>_selected`` and ``delta_<metric>_selected`` (a pseudo-method
  that ``egr evaluate`` shows as "Best predicted (EGR's choice)").

Score columns per method m: ``dockq_m`` (GlobalDockQ), ``fnat_m``, ``irmsd_m``, ``lrmsd_m`` (means over
the native's interfaces) and, for m ≠ decoy, ``delta_<metric>_m`` = m − decoy. EGR's predicted LDDT is
compared with the true per-residue LDDT-Cα of its refined structure (``lddt_pearson``,
``lddt_spearman``, ``lddt_mae``, ``true_lddt_mean``). Anything not computable is an empty cell.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from egr import layout
from egr.io import atomic_write_text
from egr.metrics import qa_correlation
from egr.structure import sanitize_id

METRICS = layout.METRICS
STEPS = ("ingest", "surface", "featurize", "refine")
# the contacts − 10 × clashes reference ranker and its two counts (egr.physics), of the cleaned input decoy
PHYSICS_COLUMNS = ("contacts_clashes", "inter_chain_contacts", "inter_chain_clashes")
BASE_COLUMNS = (
    "id", "input", "status", "reason", "target", "pred_dockq", "pred_dockq_refined", "mean_plddt",
    "interface_plddt", *PHYSICS_COLUMNS, "n_chains", "n_residues", "n_atoms", "rmsd_to_input",
    "surface_backend", "warnings",
    *(f"seconds_{step}" for step in STEPS), "seconds_total", "seconds_egr",
)
# then the score columns (egr.layout.score_columns) and the refiners' (egr.layout.baseline_columns)
# after the score columns, written when any row has it: the step a failed decoy stopped at
FAILURE_COLUMNS = ("failed_step",)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def decoy_row(scores_file: Path) -> dict:
    """The summary row of the decoy whose ``<id>_scores.json`` is ``scores_file``."""
    scores = _read_json(scores_file) or {}
    decoy_id = scores.get("id") or layout.decoy_id_of_scores(scores_file)
    folder = scores_file.parent
    seconds = scores.get("seconds", {})
    total = round(sum(seconds.get(s, 0.0) for s in STEPS), 4) if seconds else None
    backends = scores.get("surface_backend") or {}
    row = {
        "id": decoy_id, "input": scores.get("input", ""), "status": scores.get("status", "failed"),
        "reason": scores.get("reason", "" if scores else f"unreadable {scores_file.name}"),
        "failed_step": scores.get("failed_step"),
        "pred_dockq": scores.get("pred_dockq"), "pred_dockq_refined": scores.get("pred_dockq_refined"),
        "mean_plddt": scores.get("mean_plddt"), "interface_plddt": scores.get("interface_plddt"),
        **{column: scores.get(column) for column in PHYSICS_COLUMNS},
        "n_chains": len(scores["chains"]) if scores.get("chains") else None,
        "n_residues": scores.get("n_residues"), "n_atoms": scores.get("n_atoms"),
        "rmsd_to_input": scores.get("rmsd_to_input"),
        "surface_backend": ",".join(f"{ch}:{b}" for ch, b in backends.items()),
        "warnings": " | ".join(scores.get("warnings", [])),
        **{f"seconds_{s}": seconds.get(s) for s in STEPS},
        "seconds_total": total,
        "seconds_egr": total,  # EGR's wall time under the per-method name the refiners use
    }
    for method in layout.baseline_methods():
        result = _read_json(folder / f"{decoy_id}{layout.method_record_suffix(method)}")
        if result:
            row.update({f"status_{method}": result.get("status"), f"seconds_{method}": result.get("seconds"),
                        f"reason_{method}": result.get("reason")})
    row.update(score_columns(folder, decoy_id))
    row.update(selection_columns(folder / f"{decoy_id}{layout.SELECTION_JSON}", row))
    return row


def selection_columns(selection_file: Path, row: dict) -> dict:
    """``selected``, its predicted DockQ and the chosen method's score columns from ``row`` (the decoy's
    own when the input was chosen: Δ 0)."""
    record = _read_json(selection_file)
    chosen = record.get("selected") if record else None
    if not chosen:
        return {}
    selected = layout.SELECTED
    columns = {selected: chosen, f"pred_dockq_{selected}": record.get("candidates", {}).get(chosen)}
    for metric in METRICS:
        value = row.get(f"{metric}_{chosen}")
        if value is None:
            continue
        columns[f"{metric}_{selected}"] = value
        columns[f"delta_{metric}_{selected}"] = (0.0 if chosen == "decoy"
                                                 else row.get(f"delta_{metric}_{chosen}"))
    return columns


def score_columns(folder: Path, decoy_id: str) -> dict:
    """DockQ-family columns, Δs and the pLDDT agreement from the ``<id>_<method>_dockq.json`` files."""
    reports = {m: _read_json(folder / f"{decoy_id}{layout.dockq_suffix(m)}") for m in layout.scored_methods()}
    reports = {m: r for m, r in reports.items() if r is not None}
    if not reports:
        return {}
    columns: dict = {}
    # one note per distinct reason (a missing native fails every structure of the decoy alike)
    errors: dict[str, list[str]] = {}
    for method, report in reports.items():
        if "error" in report:
            errors.setdefault(report["error"], []).append(method)
    notes = [f"{', '.join(methods)}: {error}" for error, methods in errors.items()]
    # the target is the native's name only where that native could be read (its bytes were hashed when it
    # was scored, egr.compare): never a missing file's name
    native = next((r.get("native") for r in reports.values() if r.get("native") and
                   ("error" not in r or r.get("native_sha256"))), None)
    if native:
        columns["target"] = sanitize_id(native)
    values = {m: _metric_values(r) for m, r in reports.items() if "error" not in r}
    for method, metrics in values.items():
        for metric, value in metrics.items():
            columns[f"{metric}_{method}"] = _rounded(value)
            if method != "decoy" and "decoy" in values:
                columns[f"delta_{metric}_{method}"] = _rounded(value - values["decoy"][metric])
    if "egr" in values:
        columns.update(_lddt_agreement(folder / f"{decoy_id}{layout.PLDDT_CSV}", reports["egr"]))
    columns["score_notes"] = " | ".join(notes)
    return columns


def _metric_values(report: dict) -> dict[str, float]:
    interfaces = list(report["interfaces"].values())
    return {"dockq": report["global_dockq"],
            **{m: float(np.mean([i[m] for i in interfaces])) for m in ("fnat", "irmsd", "lrmsd")}}


def _lddt_agreement(plddt_csv: Path, egr_report: dict) -> dict:
    truth = {(c, int(s), i): (np.nan if v is None else v) for c, s, i, _, v in egr_report.get("residues", [])}
    try:
        with plddt_csv.open(newline="") as handle:
            table = list(csv.DictReader(handle))
    except OSError:
        return {}
    pred = np.array([float(r["plddt"]) if r["plddt"] else np.nan for r in table])
    true = np.array([truth.get((r["chain"], int(r["resseq"]), r["icode"]), np.nan) for r in table], dtype=float)
    agreement = qa_correlation(pred, true)
    finite = true[np.isfinite(true)]
    return {"lddt_pearson": _rounded(agreement["pearson"]), "lddt_spearman": _rounded(agreement["spearman"]),
            "lddt_mae": _rounded(agreement["mae"]), "true_lddt_mean": _rounded(finite.mean() if len(finite) else None)}


def _rounded(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


# The run's list of decoys, written by the Nextflow pipeline beside the per-decoy files it stages into
# EVALUATE and REPORT: id, input, native (may be empty) and the steps whose outputs exist (comma-separated).
MANIFEST = "egr_decoys.tsv"
STEP_NAMES = {"ingest": "INGEST", "surface": "MSMS_SURFACE", "featurize": "FEATURIZE", "refine": "EGR_REFINE"}


def lost_decoy_row(entry: dict) -> dict:
    """The row of a decoy of the run that left no ``<id>_scores.json``: its task failed (Nextflow's
    errorStrategy 'ignore'). The failed step is the first of :data:`STEPS` whose output is missing."""
    done = {step for step in (entry.get("completed") or "").split(",") if step}
    step = next((s for s in STEPS if s not in done), "refine")
    reason = (f"{STEP_NAMES[step]} task failed; its error is in the task's .command.err, in the work "
              "directory that pipeline_info/execution_trace_*.txt names")
    row = {"id": entry["id"], "input": entry.get("input", ""), "status": "failed", "reason": reason,
           "failed_step": step}
    if entry.get("native"):
        row["target"] = sanitize_id(entry["native"])
    return row


def read_manifest(results: Path) -> list[dict]:
    """The entries (id, input, native, completed) of the :data:`MANIFEST` found below ``results``; [] without one."""
    path = next(Path(results).rglob(MANIFEST), None)
    if path is None:
        return []
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle, delimiter="\t") if row.get("id")]


def summarize(results: Path) -> list[dict]:
    """Rows for every ``*_scores.json`` found below ``results`` and, when the folder holds the run's
    :data:`MANIFEST`, for every decoy listed there that has none (:func:`lost_decoy_row`): no decoy of
    the run is left out of the table (sorted by ID). A decoy the manifest lists takes its ``input`` from
    there (the path the run was given, not the name its file was staged under in a task)."""
    rows = {row["id"]: row for row in (decoy_row(path) for path in Path(results).rglob(layout.SCORES_GLOB))}
    for entry in read_manifest(results):
        if entry["id"] in rows:
            row = rows[entry["id"]]
            if entry.get("input"):
                row["input"] = entry["input"]
            if entry.get("native") and not row.get("target"):
                row["target"] = sanitize_id(entry["native"])
        else:
            rows[entry["id"]] = lost_decoy_row(entry)
    return sorted(rows.values(), key=lambda row: row["id"])


def write_summary(path: Path, rows: list[dict]) -> None:
    """TSV with the fixed columns first, then the score and refiner columns that any row has."""
    present = {key for row in rows for key, value in row.items() if value not in (None, "")}
    columns = [*BASE_COLUMNS, *(c for c in (*layout.score_columns(), *layout.selection_columns(), *layout.baseline_columns(),
                                              *FAILURE_COLUMNS) if c in present)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, delimiter="\t", lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else str(v).replace("\t", " ").replace("\n", " ")) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())
