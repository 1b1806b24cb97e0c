"""MultiQC custom content of a run (``egr report``) and the MultiQC build over it.

MultiQC picks up only names ending ``_mqc.tsv`` / ``_mqc.yaml``: ``egr_decoys_mqc.tsv`` (per-decoy
table), ``egr_delta_dockq_mqc.yaml`` (ΔDockQ per decoy and method, bar graph),
``egr_dockq_scatter_mqc.yaml`` (decoy vs refined DockQ, one dataset per method), ``egr_plddt_mqc.yaml``
(mean and interface pLDDT per decoy), ``egr_refinement_mqc.tsv`` and ``egr_qa_mqc.tsv`` (the tables of
:mod:`egr.evaluate`), ``egr_qa_rankers_mqc.tsv`` (the rankers side by side: EGR's predicted DockQ beside
contacts − 10×clashes, input order, random and the best possible), plus ``egr_software_mqc_versions.yml``.
The DockQ files are written only when the run has DockQ scores. With MultiQC installed (the optional
extra ``report``), :func:`run_multiqc` builds ``multiqc/multiqc_report.html`` from them, offline
(``--no-version-check``) with ``assets/multiqc_config.yml`` where that file is found and a subtitle
naming what ran (:func:`multiqc_subtitle`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from egr import __version__, layout
from egr.evaluate import CAPRI_CLASSES, DOCKQ_TOLERANCE, Evaluation, method_deltas, method_label, qa_pivot
from egr.io import atomic_write_text

if TYPE_CHECKING:  # egr.report imports this module; the run is only read here
    from egr.report import RunData

OTHER_COLORS = ("#db2777", "#0891b2", "#65a30d", "#dc2626")
DEFAULT_MULTIQC_CONFIG = Path(__file__).resolve().parents[1] / "assets" / "multiqc_config.yml"
IMPROVED = f"improved by more than {DOCKQ_TOLERANCE:g}"  # what FI-DockQ and the colours count (egr.evaluate)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def finite(value: object) -> float | None:
    """``value`` as a finite float, or None (empty, NaN, infinite or not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _tsv_value(value: object, digits: int = 4) -> str:
    number = finite(value)
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


def method_color(method: str, index: int) -> str:
    """The method's colour (egr.layout), else one of :data:`OTHER_COLORS` by its position."""
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
    categories = {method_label(m): {"name": method_label(m), "color": method_color(m, i)}
                  for i, m in enumerate(methods)}
    deltas = {m: method_deltas(summary, m) for m in methods}
    if any(d["delta_dockq"].notna().any() for d in deltas.values()):
        data = {decoy: {method_label(m): v for m in methods
                        if (v := finite(deltas[m]["delta_dockq"].iloc[i])) is not None}
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
                     if finite(x) is not None and finite(y) is not None} for d in deltas.values()]
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
                     if c in summary and (v := finite(summary[c].iloc[i])) is not None}
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

