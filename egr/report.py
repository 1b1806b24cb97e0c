"""Run report (``egr report``): one self-contained HTML page and the MultiQC custom content.

Reads a finished results folder (``summary.tsv``, ``pipeline_info/run_info.json`` and per decoy
``<id>/<id>_plddt.csv`` (with its ``interface`` column), ``<id>_egr_dockq.json`` (per-residue true
LDDT-Cα) when a native was given; the same files side by side in one folder, as Nextflow stages them,
work too) and writes into ``outdir`` the MultiQC files of :mod:`egr.multiqc_content` and ``report.html``.

``report.html`` is one file, no external requests. Sections: run summary and versions, refinement
(ΔDockQ per method, decoy vs refined DockQ, the paper's Table 1 layout), per-decoy table (status,
scores, Δ, a pLDDT sparkline; a click opens the decoy's per-residue track: predicted LDDT-Cα, true
LDDT-Cα where a native was given, interface residues marked), QA ranking (the rankers side by side:
Top-1 and Top-N hit rates, ranking loss, Spearman, AUC; then per target), failures with their reasons.

How it is made: this module reads the run and builds plain data (numbers, strings, lists and dicts:
the section tables, the plots' geometry in pixels); the Jinja2 templates in ``egr/templates``
(``report.html.j2`` and its macros) turn them into HTML and inline SVG, and inline ``report.css`` and
``report.js`` verbatim. The script gets its data as one JSON block (``<script id="egr-data">``): per
decoy its track and details, the plots' points for hovering, the residue names.

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
import json
import math
import os
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from egr import __version__, layout
from egr.chemistry import ONE_LETTER
from egr.evaluate import (
    AGREEMENT_HEADERS,
    CAPRI_CLASSES,
    REFERENCE_RANKERS,
    REFINEMENT_HEADERS,
    Evaluation,
    agreement_rows,
    dockq_improved,
    evaluate_run,
    method_deltas,
    method_label,
    qa_pivot,
    ranker_headers,
    ranker_rows,
    refinement_rows,
)
from egr.io import atomic_write_text
from egr.multiqc_content import (
    DEFAULT_MULTIQC_CONFIG,
    IMPROVED,
    finite,
    method_color,
    multiqc_subtitle,
    run_multiqc,
    write_multiqc_files,
)
# Half-width the ΔDockQ axis never goes below: scaled to changes of DockQ's rounding size (0.001), an axis
# would blow noise up into what looks like an effect.
MIN_DELTA_REACH = 0.05


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
    summary, evaluation = evaluate_run(results_dir, score_columns, top_n)
    info_path = next((p for p in (results_dir / "pipeline_info" / "run_info.json", results_dir / "run_info.json")
                      if p.is_file()), None)
    run_info = json.loads(info_path.read_text()) if info_path else {}
    return RunData(results_dir, summary, run_info, evaluation)


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
# Plot geometry (drawn by the templates' SVG macros)
# ------------------------------------------------------------------------------------------------


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


def _px(value: float) -> float:
    """A plot coordinate to 0.1 px: finer is invisible and only makes the page bigger."""
    return round(float(value), 1)


def _g4(value: float) -> float:
    """A hovered value to 4 significant digits, as the tooltip shows it."""
    return float(f"{value:.4g}")


def strip_chart(chart_id: str, rows: list[dict], domain: tuple[float, float], xlabel: str, signed: bool = False,
                zero_line: bool = False, width: int = 680) -> dict:
    """Horizontal strip plots (template macro ``strips``), one row per entry of ``rows`` (keys label,
    values, index = decoy row numbers, color, note): points (jittered), interquartile box, median bar
    and mean diamond on a shared x axis. ``hover`` holds the points for the page's script, which names
    the decoy under the pointer: ``[x, y, decoy index, row, value]``."""
    # room for the longest row label (≈ 8.4 px per character at 13 px bold)
    longest = max((len(str(r["label"])) for r in rows), default=0)
    left, right, top, row_h = max(110, int(8.4 * longest) + 24), 150, 14, 54
    lo, hi = domain
    plot_w = width - left - right

    def x(v: np.ndarray | float) -> np.ndarray | float:
        return left + (np.clip(v, lo, hi) - lo) / (hi - lo) * plot_w

    ticks = nice_ticks(lo, hi)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else hi - lo
    axis_y = top + row_h * len(rows)
    chart: dict = {"id": chart_id, "width": width, "height": axis_y + 40, "left": left, "top": top, "axis_y": axis_y,
                   "stat_x": width - right + 12, "xlabel": xlabel, "xlabel_x": _px(left + plot_w / 2),
                   "ticks": [{"x": _px(x(t)), "label": _tick_label(t, step, signed)} for t in ticks],
                   "zero_x": _px(x(0)) if zero_line and lo < 0 < hi else None, "rows": []}
    points = []
    for i, row in enumerate(rows):
        values = np.asarray(row["values"], dtype=float)
        keep = np.isfinite(values)
        values, index = values[keep], np.asarray(row["index"])[keep]
        entry = {"label": str(row["label"]), "cy": top + row_h * i + row_h / 2, "color": row["color"],
                 "note": row.get("note", ""), "n": len(values)}
        if len(values):
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            dots = [[_px(a), _px(b)] for a, b in zip(x(values), entry["cy"] + _jitter(len(values), 11.0))]
            mean = float(values.mean())
            entry |= {"box_x": _px(x(q1)), "box_w": _px(max(x(q3) - x(q1), 1.5)), "median_x": _px(x(median)),
                      "dots": dots, "mean_x": _px(x(mean)), "mean": f"{mean:.4f}"}
            points += [[a, b, int(d), i, _g4(v)] for (a, b), d, v in zip(dots, index, values)]
        chart["rows"].append(entry)
    chart["hover"] = {"series": [str(r["label"]) for r in rows], "pts": points}
    return chart


def scatter_chart(chart_id: str, series: list[dict], size: int = 430) -> dict:
    """DockQ of the decoy (x) vs after refinement (y) on [0, 1]² (template macro ``scatter``), one colour
    per method (keys label, x, y, index = decoy row numbers, color); the diagonal separates improved
    (above) from worsened decoys, dashed lines mark the CAPRI classes. ``hover``: as in
    :func:`strip_chart`, with both values: ``[x, y, decoy index, series, before, after]``."""
    pad_l, pad_b, pad_t, pad_r = 52, 44, 16, 16
    side = size - pad_l - pad_r

    def px(v: np.ndarray | float) -> np.ndarray | float:
        return pad_l + np.clip(v, 0, 1) * side

    def py(v: np.ndarray | float) -> np.ndarray | float:
        return pad_t + (1 - np.clip(v, 0, 1)) * side

    chart: dict = {
        "id": chart_id, "size": size, "height": pad_t + side + pad_b, "side": side,
        "left": pad_l, "right": pad_l + side, "top": pad_t, "bottom": pad_t + side,
        "mid_x": _px(pad_l + side / 2), "mid_y": _px(pad_t + side / 2),
        "improved": [_px(px(0.03)), _px(py(0.93))], "worse": [_px(px(0.97)), _px(py(0.05))],
        "capri": [{"name": name, "x": _px(px(t)), "y": _px(py(t)), "label_x": _px(px(t) + 3)}
                  for name, t in CAPRI_CLASSES.items()],
        "ticks": [{"label": f"{t:.1f}", "x": _px(px(t)), "y": _px(py(t) + 4)} for t in np.linspace(0, 1, 6)],
        "series": [],
    }
    points = []
    for k, s in enumerate(series):
        x, y = np.asarray(s["x"], dtype=float), np.asarray(s["y"], dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        dots = [[_px(a), _px(b)] for a, b in zip(px(x[keep]), py(y[keep]))]
        chart["series"].append({"color": s["color"], "dots": dots})
        points += [[a, b, int(d), k, _g4(u), _g4(v)]
                   for (a, b), d, u, v in zip(dots, np.asarray(s["index"])[keep], x[keep], y[keep])]
    chart["hover"] = {"series": [str(s["label"]) for s in series], "pts": points}
    return chart


# ------------------------------------------------------------------------------------------------
# Page data: what each section of the template shows
# ------------------------------------------------------------------------------------------------


def _fmt_num(value: object, digits: int = 3) -> str:
    number = finite(value)
    return "" if number is None else f"{number:.{digits}f}"


def _signed(value: float, digits: int = 4) -> str:
    """A Δ with its sign and a true minus; rounding, then + 0.0, turns -0.0 and -0.00001 into 0.0: no
    "−0.0000" for an unchanged decoy."""
    return f"{round(value, digits) + 0.0:+.{digits}f}".replace("-", "−")


def _num(value: object, digits: int = 3, klass: str = "", text: str | None = None) -> dict | None:
    """A sortable numeric cell (macro ``num``): ``v`` the value the table sorts by, ``text`` what it
    shows, ``cls`` its colour class; None when not computable (an empty cell). Styling sits on the
    cell itself, not on inner elements: a 1,000-row table stays light for the browser."""
    number = finite(value)
    if number is None:
        return None
    return {"v": f"{number:.6g}", "text": text if text is not None else f"{number:.{digits}f}", "cls": klass}


def _capri_class(dockq: float) -> str:
    names = [name for name, threshold in CAPRI_CLASSES.items() if dockq >= threshold]
    return names[-1] if names else "incorrect"


def _dockq_num(value: object) -> dict | None:
    """A DockQ cell coloured by its CAPRI class."""
    number = finite(value)
    return _num(number, klass=f"q q-{_capri_class(number)}" if number is not None else "")


def _delta_num(value: object) -> dict | None:
    """A ΔDockQ cell: green / red beyond DockQ's printed precision, grey within it."""
    number = finite(value)
    if number is None:
        return None
    # a worsening beyond the tolerance is an improvement of −Δ
    klass = "d-up" if dockq_improved(number) else "d-down" if dockq_improved(-number) else "d-zero"
    return _num(number, klass=klass, text=_signed(number))


def _column(summary: pd.DataFrame, name: str) -> pd.Series:
    return summary[name] if name in summary else pd.Series("", index=summary.index)


def _overview(run: RunData) -> dict:
    """Cards (key figure, value, subtext) and the strip plot of predicted quality per decoy."""
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
        cards.append((f"ΔDockQ {method_label(row.method)}",
                      _signed(row.delta_dockq) if finite(row.delta_dockq) is not None else "–",
                      f"FI-DockQ {_fmt_num(row.fi_dockq, 1)}% of {row.n} decoys" if row.n else "not scored"))
    values = {c: pd.to_numeric(_column(summary, c), errors="coerce").to_numpy(dtype=float)
              for c in ("mean_plddt", "interface_plddt")}
    medians = {c: _fmt_num(np.nanmedian(v)) if np.isfinite(v).any() else "–" for c, v in values.items()}
    index = np.arange(len(summary))
    strips = strip_chart("plddt", [
        {"label": "mean pLDDT", "values": values["mean_plddt"], "index": index, "color": "#2563eb",
         "note": f"median {medians['mean_plddt']}"},
        {"label": "interface pLDDT", "values": values["interface_plddt"], "index": index, "color": "#f59e0b",
         "note": f"median {medians['interface_plddt']}"},
    ], (0.0, 1.0), "predicted LDDT-Cα (decoy mean)")
    return {"cards": cards, "strips": strips}


def _refinement(run: RunData) -> dict | None:
    """The ΔDockQ strips, the decoy-vs-refined scatter and the refinement tables; None without DockQ scores."""
    evaluation, summary = run.evaluation, run.summary
    if not len(evaluation.refinement):
        return None
    index = np.arange(len(summary))
    deltas = {m: method_deltas(summary, m) for m in evaluation.methods}
    finite_deltas = np.concatenate([d["delta_dockq"].to_numpy(dtype=float) for d in deltas.values()])
    finite_deltas = finite_deltas[np.isfinite(finite_deltas)]
    reach = max(float(np.abs(finite_deltas).max()) * 1.08 if len(finite_deltas) else 0.0, MIN_DELTA_REACH)
    overall = evaluation.refinement[evaluation.refinement["target"] == "(all)"].set_index("method")
    strip_rows, scatter = [], []
    for i, method in enumerate(evaluation.methods):
        color = method_color(method, i)
        fi = overall["fi_dockq"].get(method, np.nan) if len(overall) else np.nan
        note = f"improved {_fmt_num(fi, 1)}%" if finite(fi) is not None else "not scored"
        strip_rows.append({"label": method_label(method), "values": deltas[method]["delta_dockq"].to_numpy(dtype=float),
                           "index": index, "color": color, "note": note})
        scatter.append({"label": method_label(method), "x": deltas[method]["dockq_before"],
                        "y": deltas[method]["dockq_after"], "index": index, "color": color})
    rows = refinement_rows(evaluation)
    return {
        "strips": strip_chart("delta_dockq", strip_rows, (-reach, reach), "ΔDockQ = refined − decoy", signed=True,
                              zero_line=True),
        "scatter": scatter_chart("dockq_scatter", scatter),
        "legend": [{"label": s["label"], "color": s["color"]} for s in scatter],
        "headers": REFINEMENT_HEADERS,
        "classes": ["", "", "num", "num", "num", "num", "num", "num", "num", "num"],
        "pooled": [r for r in rows if r[0] == "(all)"],
        "per_target": [r for r in rows if r[0] != "(all)"],
    }


def _decoy_table(run: RunData, data: list[dict]) -> dict:
    """Headers (label, sort kind ``s``/``n``, class, tooltip) and one row per decoy: its identifiers, status
    and the numeric cells (:func:`_num`) in header order."""
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
    rows = []
    for i, record in enumerate(summary.to_dict("records")):
        decoy, status = str(record["id"]), str(record.get("status", ""))
        target, reason = str(record.get("target", "")), str(record.get("reason", ""))
        nums = [_num(record.get("mean_plddt")), _num(record.get("interface_plddt"))]
        if has_dockq:
            nums.append(_dockq_num(record.get("dockq_decoy")))
            nums += [_dockq_num(record.get(f"dockq_{m}")) for m in methods[:1]]
            nums += [_delta_num(deltas[m][i]) for m in methods]
        if "lddt_pearson" in summary:
            nums.append(_num(record.get("lddt_pearson"), 2))
        nums += [_num(record.get("n_residues"), 0), _num(record.get("seconds_total"), 2)]
        rows.append({"i": i, "id": decoy, "input": str(record.get("input", "")), "target": target,
                     "status": status, "badge": status if status in ("ok", "skipped", "failed") else "other",
                     "reason": reason, "search": " ".join([decoy, target, status, reason]).lower(),
                     "nums": nums, "spark": "p" in data[i]})
    statuses = [s for s in ("ok", "skipped", "failed") if run.evaluation.status_counts.get(s)]
    return {"headers": headers, "has_target": has_target, "rows": rows, "statuses": statuses}


def _qa(run: RunData) -> dict:
    """The rankers side by side and the per-target pivots (both None / empty without a QA ranking), and the
    predicted-vs-true LDDT agreement."""
    evaluation = run.evaluation
    n = evaluation.top_n
    qa: dict = {"n": n, "rankers": None, "pivots": [], "agreement": _agreement(run)}
    if not len(evaluation.qa):
        return qa
    headers = ranker_headers(n)
    qa["rankers"] = {"headers": headers, "classes": ["", *["num"] * (len(headers) - 1)],
                     "rows": [{"ref": key in REFERENCE_RANKERS, "cells": cells} for key, cells in ranker_rows(evaluation)]}
    reference = set(REFERENCE_RANKERS.values())
    for what, title in (("hits", f"Top-{n} hit rate per target"), ("top1", "Top-1 hit per target"),
                        ("loss", "Ranking loss per target (lower is better)")):
        headers, rows = qa_pivot(evaluation, what)
        classes = ["", "num", *("num ref" if h in reference else "num" for h in headers[2:])]
        qa["pivots"].append({"title": title, "headers": headers, "classes": classes,
                             "rows": [_pivot_row(row, classes, what) for row in rows]})
    qa["targets"] = evaluation.qa["target"].nunique()
    return qa


def _pivot_row(row: list[str], classes: list[str], what: str) -> dict:
    """One row of a QA pivot: ``kind`` ``single`` (a target of one decoy: a note across the score columns),
    ``sum`` (the summary row) or ``""``; ``cells`` as (text, class) with the best non-reference loss of a
    target marked ``best`` (bold green)."""
    if len(row) > 2 and row[2].startswith("single decoy"):
        return {"kind": "single", "cells": row[:3], "span": len(row) - 2}
    klass = [*classes]
    if what == "loss" and row[0] != "Summary":
        scores = [(finite(v), j) for j, v in enumerate(row) if j >= 2 and "ref" not in classes[j]]
        scores = [(v, j) for v, j in scores if v is not None]
        if scores:
            best = min(v for v, _ in scores)
            for v, j in scores:
                if v == best:
                    klass[j] += " best"
    return {"kind": "sum" if row[0] == "Summary" else "", "cells": list(zip(row, klass))}


def _agreement(run: RunData) -> dict | None:
    """Predicted vs true LDDT-Cα: pooled and per-target rows; None when no decoy has both."""
    rows = agreement_rows(run.evaluation)
    if not rows:
        return None
    return {"headers": AGREEMENT_HEADERS, "classes": ["", "num", "num", "num", "num", "num", "num"],
            "pooled": [r for r in rows if r[0] == "(all)"], "per_target": [r for r in rows if r[0] != "(all)"]}


def _failures(run: RunData) -> dict:
    """Rows of the failure tables: failed decoys, refiners that did not run, scoring notes, input warnings,
    and the evaluation's notes."""
    summary = run.summary
    failed = summary[_column(summary, "status").astype(str) == "failed"]
    methods = []
    for method in run.evaluation.methods:
        column = f"status_{method}"
        if column not in summary:
            continue
        bad = summary[(summary[column].astype(str) != "") & (summary[column].astype(str) != "ok")]
        methods += [[r["id"], method_label(method), r[column], str(r.get(f"reason_{method}", ""))]
                    for r in bad.to_dict("records")]
    notes = summary[_column(summary, "score_notes").astype(str) != ""]
    warned = summary[_column(summary, "warnings").astype(str) != ""]
    return {"failed": [[r["id"], r.get("input", ""), r.get("reason", "")] for r in failed.to_dict("records")],
            "methods": methods,
            "notes": [[r["id"], r["score_notes"]] for r in notes.to_dict("records")],
            "warnings": [[r["id"], r["warnings"]] for r in warned.to_dict("records")],
            "evaluation": list(run.evaluation.notes)}


def _versions(run: RunData) -> dict:
    """Rows (name, value) of the run's software, model and options, and all options as JSON text."""
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
    return {"rows": [[k, str(v)] for k, v in rows if v not in ("", None)],
            "options": json.dumps(options, indent=2, default=str) if options else ""}


def _info_pairs(record: dict, methods: tuple[str, ...]) -> list[list[str]]:
    """Detail lines of one decoy shown under its track."""
    pairs = [["input", record.get("input", "")]]
    for key, label in (("reason", "reason"), ("warnings", "warnings"), ("score_notes", "scoring notes")):
        if str(record.get(key, "") or ""):
            pairs.append([label, str(record[key])])
    for method in methods:
        status = str(record.get(f"status_{method}", "") or "")
        if status:
            seconds = finite(record.get(f"seconds_{method}"))
            reason = str(record.get(f"reason_{method}", "") or "")
            timing = f", {seconds:.1f} s" if seconds is not None and status == "ok" else ""
            pairs.append([method_label(method), status + timing + (f": {reason}" if reason else "")])
    for key in ("lddt_pearson", "lddt_spearman", "lddt_mae", "true_lddt_mean", "rmsd_to_input"):
        if finite(record.get(key)) is not None:
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


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------


@cache
def _environment() -> jinja2.Environment:
    """The templates of ``egr/templates`` (package data), HTML-escaped, strict about missing names."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("egr", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals |= {"zip": zip, "asset": _asset}
    # the |tojson filter (the page's data block) escapes < > & ' as \u003c etc.: no string can end the
    # <script> element; compact, and NaN would not be JSON
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
    return env


def _asset(name: str) -> Markup:
    """A CSS or JS file of ``egr/templates``, inlined as it is (not a template: its braces are not Jinja's)."""
    env = _environment()
    text, _, _ = env.loader.get_source(env, name)
    closing = "</style" if name.endswith(".css") else "</script"
    if closing in text.lower():  # would end its element early
        raise ValueError(f"{name} contains {closing}")
    return Markup(text)


def render_html(run: RunData, data: list[dict]) -> str:
    """The whole page as one string (see the module docstring); ``data``: :func:`page_data`."""
    info = run.run_info
    started = info.get("started", "")
    overview, refinement = _overview(run), _refinement(run)
    charts = [overview["strips"], *((refinement["strips"], refinement["scatter"]) if refinement else ())]
    return _environment().get_template("report.html.j2").render(
        title=run.results_dir.name,
        meta=" · ".join(x for x in (f"results: {run.results_dir}", f"started {started}" if started else "",
                                    f"egr {info.get('egr_version', __version__)}") if x),
        untrained=info.get("model", {}).get("trained") is False,
        version=__version__,
        improved=IMPROVED,
        min_delta_reach=f"{MIN_DELTA_REACH:g}",
        overview=overview,
        refinement=refinement,
        decoys=_decoy_table(run, data),
        qa=_qa(run),
        failures=_failures(run),
        versions=_versions(run),
        page={"decoys": data, "plots": {c["id"]: c["hover"] for c in charts},
              "residue_names": {one: three for three, one in ONE_LETTER.items()}},
    )


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
