"""Run-level evaluation of a finished results folder (``egr evaluate``): refinement and QA tables.

Input: ``summary.tsv`` of an ``egr run`` (or of the Nextflow pipeline), one row per decoy. The score
columns it may hold, per method ``m`` (``decoy`` = the input; ``egr`` and the comparison refiners):
``dockq_<m>``, ``fnat_<m>``, ``irmsd_<m>``, ``lrmsd_<m>`` and, for ``m != decoy``,
``delta_<metric>_<m>`` (refined − decoy; recomputed from the two columns when absent) and
``seconds_<m>`` (for EGR, ``seconds_total`` when there is no ``seconds_egr``; counted only where
``status_<m>`` is ``ok`` when the run has that column). An empty cell is a value that could not be
computed: it stays out of every mean and count, it is never taken as 0.

Tables (definitions as in DESIGN.md, layouts of the EGR paper's Tables 1–3):

* **refinement** — per target and over all decoys (target ``(all)``, pooled over decoys, not a mean of
  per-target means), per method: decoys scored ``n``, mean ΔDockQ, ΔiRMSD, ΔLRMSD, ΔFnat,
  FI-DockQ = % of decoys whose DockQ went up (Δ > 0 strictly, on the stored values), API-DockQ = mean
  of Δ/DockQ_decoy over those improved decoys, in % (decoys with DockQ_decoy = 0 have no relative
  change and are left out of it), mean seconds per decoy.
* **qa** — per target, per ranker: Top-N hit rate a/b/c (decoys with DockQ ≥ 0.23 / 0.49 / 0.80 among
  the N ranked first; N = 10 by default) and ranking loss (best DockQ of the target's decoys − DockQ of
  the decoy ranked first). The truth is the decoys' own DockQ (``dockq_decoy``). Rankers: EGR's
  ``mean_plddt`` and ``interface_plddt``, any other numeric column asked for (higher is better, or
  lower with ``COLUMN:lower``), and three references: ``input_order`` (the first N rows of the
  summary), ``random`` (the exact expectation over uniformly random rankings — hypergeometric — which is
  what averaging seeded shuffles converges to, without sampling noise) and ``oracle`` (ranked by DockQ
  itself: the best any ranker can do). A decoy without a score ranks after all scored ones; ties keep
  input order. A target with a single decoy has no ranking to compare: its cells are empty, with a note.
* **qa_summary** — per ranker over the targets where it is defined: targets with at least one
  acceptable / medium / high decoy in the top N (paper Table 2 "Summary"; for ``random`` the expected
  number), and ranking loss mean ± standard deviation (paper Table 3, sample standard deviation).
* **agreement** — per target and overall: mean over decoys of the per-decoy Pearson / Spearman / MAE
  between predicted and true LDDT-Cα, and the means of predicted and true LDDT-Cα.

Files: ``evaluation.tsv`` (long format: ``section, target, method, metric, value``) and
``evaluation.md`` (the same as markdown tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from egr.io import atomic_write_text

CAPRI_CLASSES = {"acceptable": 0.23, "medium": 0.49, "high": 0.80}  # DockQ lower bounds
DELTA_METRICS = ("dockq", "irmsd", "lrmsd", "fnat")
OVERALL = "(all)"  # target label of the pooled rows; not a valid sanitised decoy ID (parentheses)
DEFAULT_SCORES = ("mean_plddt", "interface_plddt")
METHOD_LABELS = {"decoy": "Decoy", "egr": "EGR", "openmm": "OpenMM relax", "modeller": "Modeller",
                 "galaxy": "GalaxyRefineComplex"}
REFERENCE_RANKERS = {"input_order": "Input order", "random": "Random (expected)", "oracle": "Best possible"}
SCORE_LABELS = {"mean_plddt": "EGR pLDDT", "interface_plddt": "EGR interface pLDDT"}
# Columns that hold text; every other column is numeric where all its non-empty cells parse as numbers.
TEXT_COLUMNS = ("id", "input", "status", "reason", "target", "surface_backend", "warnings", "score_notes")
TEXT_PREFIXES = ("status_", "reason_")


@dataclass(frozen=True)
class Ranker:
    """A way of ordering a target's decoys: by a summary column, or one of :data:`REFERENCE_RANKERS`."""

    key: str
    label: str
    column: str | None = None
    higher_is_better: bool = True


@dataclass(frozen=True)
class Evaluation:
    """The tables of one results folder (see the module docstring); NaN = not computable."""

    refinement: pd.DataFrame
    qa: pd.DataFrame
    qa_summary: pd.DataFrame
    agreement: pd.DataFrame
    methods: tuple[str, ...]
    rankers: tuple[Ranker, ...]
    top_n: int
    status_counts: dict[str, int]
    notes: tuple[str, ...] = field(default_factory=tuple)


def read_summary(results_dir: Path | str) -> pd.DataFrame:
    """``summary.tsv`` of ``results_dir`` (or the file itself) with numeric columns as float (NaN = empty)
    and text columns as str ('' = empty)."""
    path = Path(results_dir)
    path = path / "summary.tsv" if path.is_dir() else path
    raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    return typed_summary(raw)


def typed_summary(raw: pd.DataFrame) -> pd.DataFrame:
    """Columns of a summary read as text, typed: see :func:`read_summary`."""
    frame = raw.copy()
    for column in frame.columns:
        if column in TEXT_COLUMNS or column.startswith(TEXT_PREFIXES):
            frame[column] = frame[column].fillna("").astype(str)
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        # a column with any non-numeric cell (a user's label column) stays text rather than losing cells
        frame[column] = numbers if numbers.notna().sum() == frame[column].notna().sum() else frame[column].fillna("")
    if "target" not in frame:
        frame["target"] = ""
    return frame


def score_methods(frame: pd.DataFrame) -> tuple[str, ...]:
    """Refinement methods of the run: those with a DockQ column, and comparison refiners that were asked
    for (``status_<m>``) even if none of their structures could be scored. EGR first, then column order."""
    found = [c.split("_", 1)[1] for c in frame.columns
             if (c.startswith("dockq_") and c != "dockq_decoy") or c.startswith("status_")]
    if "dockq_decoy" not in frame:
        return ()  # without natives there is nothing to compare
    return tuple(sorted(dict.fromkeys(found), key=lambda m: m != "egr"))


def parse_rankers(score_columns: tuple[str, ...] | list[str] = ()) -> tuple[Ranker, ...]:
    """Rankers for EGR's two scores, the extra ``score_columns`` (``NAME`` or ``NAME:lower``) and the
    references, in that order. Raises ValueError on a malformed entry."""
    rankers: list[Ranker] = []
    for spec in (*DEFAULT_SCORES, *score_columns):
        name, _, direction = spec.strip().partition(":")
        if not name or direction not in ("", "lower", "higher"):
            raise ValueError(f"score column {spec!r}: expected NAME or NAME:lower")
        if any(r.key == name for r in rankers):
            continue
        lower = direction == "lower"
        label = SCORE_LABELS.get(name, name) + (" (lower is better)" if lower else "")
        rankers.append(Ranker(name, label, name, not lower))
    rankers += [Ranker(key, label) for key, label in REFERENCE_RANKERS.items()]
    return tuple(rankers)


def evaluate(results_dir: Path | str, score_columns: tuple[str, ...] | list[str] = (),
             top_n: int = 10) -> Evaluation:
    """Evaluate the ``summary.tsv`` of ``results_dir``; see :func:`evaluate_frame`."""
    return evaluate_frame(read_summary(results_dir), score_columns, top_n)


def evaluate_frame(frame: pd.DataFrame, score_columns: tuple[str, ...] | list[str] = (),
                   top_n: int = 10) -> Evaluation:
    """All tables for a typed summary (:func:`typed_summary`). Raises ValueError when a requested score
    column is absent or not numeric, or ``top_n`` < 1."""
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    rankers = parse_rankers(score_columns)
    for ranker in rankers:
        if ranker.column and ranker.column in frame and not pd.api.types.is_numeric_dtype(frame[ranker.column]):
            raise ValueError(f"score column {ranker.column!r} is not numeric")
        if ranker.column and ranker.column not in frame and ranker.key not in DEFAULT_SCORES:
            raise ValueError(f"score column {ranker.column!r} not in summary.tsv")
    methods = score_methods(frame)
    status = frame["status"] if "status" in frame else pd.Series("", index=frame.index)
    counts = {s: int((status == s).sum()) for s in ("ok", "skipped", "failed")}
    qa, qa_summary, qa_notes = qa_tables(frame, rankers, top_n)
    return Evaluation(
        refinement=refinement_table(frame, methods),
        qa=qa,
        qa_summary=qa_summary,
        agreement=agreement_table(frame),
        methods=methods,
        rankers=rankers,
        top_n=top_n,
        status_counts=counts,
        notes=tuple(_notes(frame, methods) + qa_notes),
    )


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """Column as float; all NaN when absent (a method that never ran has no column at all)."""
    if column in frame:
        return pd.to_numeric(frame[column], errors="coerce").astype(float)
    return pd.Series(np.nan, index=frame.index, dtype=float)


def method_deltas(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per decoy for ``method``: target, DockQ before/after, Δ of each metric and seconds."""
    out = pd.DataFrame({"target": frame["target"].astype(str), "method": method,
                        "dockq_before": _numeric(frame, "dockq_decoy"),
                        "dockq_after": _numeric(frame, f"dockq_{method}")})
    for metric in DELTA_METRICS:
        stored = f"delta_{metric}_{method}"
        out[f"delta_{metric}"] = (_numeric(frame, stored) if stored in frame
                                  else _numeric(frame, f"{metric}_{method}") - _numeric(frame, f"{metric}_decoy"))
    seconds = f"seconds_{method}"
    # EGR's own cost per decoy is the whole chain ingest → refine when no separate column exists
    out["seconds"] = _numeric(frame, seconds if seconds in frame or method != "egr" else "seconds_total")
    status = f"status_{method}"
    if status in frame:
        # a skipped refiner reports ~0 s: only runs that produced a structure say what the method costs
        out["seconds"] = out["seconds"].where(frame[status] == "ok")
    return out


def refinement_table(frame: pd.DataFrame, methods: tuple[str, ...]) -> pd.DataFrame:
    """Paper Table 1 per target and pooled (target :data:`OVERALL`); one row per (target, method)."""
    columns = ["target", "method", "n", "n_improved", "delta_dockq", "delta_irmsd", "delta_lrmsd", "delta_fnat",
               "fi_dockq", "api_dockq", "seconds"]
    if not methods:
        return pd.DataFrame(columns=columns)
    long = pd.concat([method_deltas(frame, m) for m in methods], ignore_index=True)
    delta = long["delta_dockq"]
    scored = delta.notna()
    long["improved"] = (delta > 0).astype(float).where(scored)
    relative = delta / long["dockq_before"].where(long["dockq_before"] > 0)
    long["relative"] = relative.where(long["improved"] == 1.0)
    aggregations = {
        "n": ("delta_dockq", "count"),
        "n_improved": ("improved", "sum"),
        **{f"delta_{m}": (f"delta_{m}", "mean") for m in DELTA_METRICS},
        "fi_dockq": ("improved", "mean"),
        "api_dockq": ("relative", "mean"),
        "seconds": ("seconds", "mean"),
    }
    per_target = long[long["target"] != ""].groupby(["target", "method"], sort=False).agg(**aggregations)
    overall = long.groupby("method", sort=False).agg(**aggregations).assign(target=OVERALL)
    table = pd.concat([per_target.reset_index(), overall.reset_index()], ignore_index=True)
    table[["fi_dockq", "api_dockq"]] *= 100.0
    table[["n", "n_improved"]] = table[["n", "n_improved"]].astype(int)
    order = {m: i for i, m in enumerate(methods)}
    table["_target_order"] = table["target"].eq(OVERALL)
    table["_method_order"] = table["method"].map(order)
    table = table.sort_values(["_target_order", "target", "_method_order"], kind="stable")
    return table[columns].reset_index(drop=True)


def _ranks(pool: pd.DataFrame, ranker: Ranker) -> pd.Series:
    """Rank (1 = first) of each decoy within its target under ``ranker``; ties and unscored keep input order."""
    groups = pool.groupby("target", sort=False)
    if ranker.key == "input_order":
        return groups.cumcount() + 1.0
    values = pool["truth"] if ranker.key == "oracle" else pool["score"]
    ascending = ranker.column is not None and not ranker.higher_is_better
    return values.groupby(pool["target"], sort=False).rank(method="first", ascending=ascending, na_option="bottom")


def _ranked_metrics(pool: pd.DataFrame, ranks: pd.Series, top_n: int) -> pd.DataFrame:
    """Hits per CAPRI class in the top N and DockQ of the first-ranked decoy, per target."""
    top = ranks <= top_n
    by_target = pool["target"]
    table = pd.DataFrame({f"hits_{c}": ((pool["truth"] >= t) & top).groupby(by_target, sort=False).sum()
                          for c, t in CAPRI_CLASSES.items()}).astype(float)
    table["top1_dockq"] = pool["truth"][ranks == 1].groupby(by_target[ranks == 1], sort=False).first()
    return table


def _random_metrics(pool: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Expected hits and first-ranked DockQ under a uniformly random ranking, per target."""
    groups = pool.groupby("target", sort=False)["truth"]
    n = groups.size()
    shown = np.minimum(n, top_n)
    # each decoy is in a random top N with probability N/n: expected hits = (decoys of the class) × N/n
    table = pd.DataFrame({f"hits_{c}": (pool["truth"] >= t).groupby(pool["target"], sort=False).sum() * shown / n
                          for c, t in CAPRI_CLASSES.items()}).astype(float)
    table["top1_dockq"] = groups.mean()
    return table


def _random_targets_with_hit(pool: pd.DataFrame, top_n: int) -> dict[str, float]:
    """Expected number of targets with ≥ 1 decoy of each class in a random top N (hypergeometric)."""
    n = pool.groupby("target", sort=False).size()
    expected = {}
    for name, threshold in CAPRI_CLASSES.items():
        good = (pool["truth"] >= threshold).groupby(pool["target"], sort=False).sum()
        # P(at least one of `good` among min(N, n) drawn from n) = 1 − P(none), summed over targets
        expected[name] = float(hypergeom.sf(0, n, good, np.minimum(n, top_n)).sum())
    return expected


def qa_tables(frame: pd.DataFrame, rankers: tuple[Ranker, ...], top_n: int
              ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per-target ranking metrics (paper Tables 2–3), their summary per ranker, and notes."""
    qa_columns = ["target", "ranker", "n_decoys", "top_n", "hits_acceptable", "hits_medium", "hits_high",
                  "top1_dockq", "best_dockq", "ranking_loss", "note"]
    summary_columns = ["ranker", "n_targets", "targets_acceptable", "targets_medium", "targets_high",
                       "ranking_loss_mean", "ranking_loss_std"]
    truth = _numeric(frame, "dockq_decoy")
    keep = truth.notna() & (frame["target"].astype(str) != "")
    pool = pd.DataFrame({"target": frame["target"][keep].astype(str), "truth": truth[keep]})
    if pool.empty:
        notes = [] if "dockq_decoy" not in frame else ["no decoy has both a target and a DockQ: no QA ranking"]
        return pd.DataFrame(columns=qa_columns), pd.DataFrame(columns=summary_columns), notes
    groups = pool.groupby("target", sort=False)["truth"]
    n_decoys, best = groups.size(), groups.max()
    single = n_decoys < 2
    notes = []
    if single.any():
        notes.append(f"{int(single.sum())} target(s) with a single scored decoy: ranking metrics left empty "
                     f"(nothing to rank): {', '.join(sorted(n_decoys.index[single]))}")
    tables, summaries = [], []
    for ranker in rankers:
        note = pd.Series("", index=n_decoys.index)
        if ranker.key == "random":
            metrics = _random_metrics(pool, top_n)
        else:
            scores = pool.assign(score=_numeric(frame, ranker.column)[keep]) if ranker.column else pool
            metrics = _ranked_metrics(scores, _ranks(scores, ranker), top_n)
            if ranker.column:
                unscored = scores["score"].isna().groupby(scores["target"], sort=False).all()
                note[unscored] = f"no {ranker.column} values"
                metrics.loc[unscored.index[unscored]] = np.nan
        metrics = metrics.reindex(n_decoys.index)
        note[single] = "single decoy: no ranking"
        metrics.loc[single.index[single]] = np.nan
        metrics["ranking_loss"] = best - metrics["top1_dockq"]
        table = metrics.assign(ranker=ranker.key, n_decoys=n_decoys, top_n=np.minimum(n_decoys, top_n),
                               best_dockq=best, note=note)
        tables.append(table.rename_axis("target").reset_index())
        defined = metrics["ranking_loss"].notna()
        if ranker.key == "random":
            with_hit = _random_targets_with_hit(pool[pool["target"].isin(n_decoys.index[defined])], top_n)
        else:
            with_hit = {c: float((metrics.loc[defined, f"hits_{c}"] >= 1).sum()) for c in CAPRI_CLASSES}
        loss = metrics.loc[defined, "ranking_loss"]
        summaries.append({"ranker": ranker.key, "n_targets": int(defined.sum()),
                          **{f"targets_{c}": v for c, v in with_hit.items()},
                          "ranking_loss_mean": loss.mean() if len(loss) else np.nan,
                          "ranking_loss_std": loss.std(ddof=1) if len(loss) > 1 else np.nan})
    qa = pd.concat(tables, ignore_index=True)
    qa = qa.sort_values(["target"], kind="stable").reset_index(drop=True)
    return qa[qa_columns], pd.DataFrame(summaries, columns=summary_columns), notes


def agreement_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Predicted vs true LDDT-Cα per target and overall: means over decoys of the per-decoy statistics."""
    columns = ["lddt_pearson", "lddt_spearman", "lddt_mae", "mean_plddt", "true_lddt_mean"]
    values = pd.DataFrame({c: _numeric(frame, c) for c in columns})
    scored = values["true_lddt_mean"].notna()
    if not scored.any():
        return pd.DataFrame(columns=["target", "n", *columns])
    values = values[scored].assign(target=frame["target"][scored].astype(str))
    aggregations = {"n": ("true_lddt_mean", "count"), **{c: (c, "mean") for c in columns}}
    per_target = values[values["target"] != ""].groupby("target").agg(**aggregations).reset_index()
    pooled = pd.DataFrame([{"target": OVERALL, "n": int(scored.sum()), **values[columns].mean().to_dict()}])
    return pd.concat([per_target, pooled], ignore_index=True)[["target", "n", *columns]]


def _notes(frame: pd.DataFrame, methods: tuple[str, ...]) -> list[str]:
    """Why some numbers are missing: no natives, methods that did not run for some decoys."""
    notes = []
    if "dockq_decoy" not in frame:
        notes.append("no DockQ columns in summary.tsv (no native structures given): refinement and QA "
                     "tables need natives (samplesheet 'native' column or --natives)")
        return notes
    for method in methods:
        column = f"status_{method}"
        if column not in frame:
            continue
        statuses = frame[column][frame[column] != ""]
        other = statuses[statuses != "ok"]
        if len(other):
            counts = ", ".join(f"{n} {s}" for s, n in other.value_counts().items())
            reasons = frame.get(f"reason_{method}", pd.Series("", index=frame.index))[other.index]
            first = next((r for r in reasons if r), "")
            notes.append(f"{METHOD_LABELS.get(method, method)}: {counts}" + (f" (e.g. {first})" if first else ""))
    return notes


# ------------------------------------------------------------------------------------------------
# Writers
# ------------------------------------------------------------------------------------------------


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _melt(table: pd.DataFrame, section: str) -> pd.DataFrame:
    """Long rows of one table, each source row's metrics kept together in column order."""
    numbered = table.assign(_row=np.arange(len(table)))
    long = numbered.melt(["_row", "target", "method"], var_name="metric").sort_values("_row", kind="stable")
    return long.drop(columns="_row").assign(section=section)


def evaluation_long(evaluation: Evaluation) -> pd.DataFrame:
    """All tables in one long table: section, target, method (or ranker), metric, value."""
    parts = [
        _melt(evaluation.refinement, "refinement"),
        _melt(evaluation.qa.rename(columns={"ranker": "method"}), "qa"),
        _melt(evaluation.qa_summary.rename(columns={"ranker": "method"}).assign(target=OVERALL), "qa_summary"),
        _melt(evaluation.agreement.assign(method="egr"), "lddt_agreement"),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["section", "target", "method", "metric", "value"])
    long = pd.concat(parts, ignore_index=True)
    long = long[~((long["metric"] == "note") & (long["value"] == ""))]
    return long[["section", "target", "method", "metric", "value"]].reset_index(drop=True)


def _cell(value: object) -> str:
    """A TSV cell: '' for a missing value, integers without a decimal point, floats to 6 significant digits."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return str(value).replace("\t", " ").replace("\n", " ")


def to_tsv(evaluation: Evaluation) -> str:
    long = evaluation_long(evaluation)
    lines = ["\t".join(long.columns)]
    lines += ["\t".join(_cell(v) for v in row) for row in long.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _fmt(value: object, kind: str = "f4") -> str:
    """Markdown / HTML cell text; '' when missing. kinds: f4, f2, signed (Δ), pct, hits (a/b/c part)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA:
        return ""
    value = float(value)
    if kind == "signed":
        return f"{round(value, 4) + 0.0:+.4f}"  # no "-0.0000" for a (rounded) zero
    if kind == "pct":
        return f"{value:.2f}%"
    if kind == "hits":
        return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
    if kind == "f2":
        return f"{value:.2f}"
    return f"{value:.4f}"


def hit_rate(row: pd.Series | dict, prefix: str = "hits_") -> str:
    """'a/b/c' of a qa row (or 'targets_' of a summary row); '' when undefined."""
    parts = [_fmt(row[f"{prefix}{c}"], "hits") for c in CAPRI_CLASSES]
    return "/".join(parts) if all(parts) else ""


def refinement_rows(evaluation: Evaluation) -> list[list[str]]:
    """Display rows of the refinement table (target, method, n, Δs, FI, API, seconds)."""
    rows = []
    for r in evaluation.refinement.itertuples(index=False):
        rows.append([r.target, method_label(r.method), str(r.n), _fmt(r.delta_dockq, "signed"),
                     _fmt(r.delta_irmsd, "signed"), _fmt(r.delta_lrmsd, "signed"), _fmt(r.delta_fnat, "signed"),
                     _fmt(r.fi_dockq, "pct"), _fmt(r.api_dockq, "pct"), _fmt(r.seconds, "f2")])
    return rows


REFINEMENT_HEADERS = ["Target", "Method", "n", "ΔDockQ ↑", "ΔiRMSD ↓", "ΔLRMSD ↓", "ΔFnat ↑", "FI-DockQ ↑",
                      "API-DockQ ↑", "s / decoy"]


def qa_pivot(evaluation: Evaluation, what: str) -> tuple[list[str], list[list[str]]]:
    """Targets × rankers: ``what`` = 'hits' (a/b/c, paper Table 2) or 'loss' (paper Table 3); the last row
    is the summary over targets."""
    labels = {r.key: r.label for r in evaluation.rankers}
    keys = [r.key for r in evaluation.rankers]
    headers = ["Target", "n", *(labels[k] for k in keys)]
    rows = []
    qa = evaluation.qa
    for target, group in qa.groupby("target", sort=True):
        by_ranker = group.set_index("ranker")
        note = next((n for n in group["note"] if n.startswith("single")), "")
        cells = [hit_rate(by_ranker.loc[k]) if what == "hits" else _fmt(by_ranker.loc[k, "ranking_loss"])
                 for k in keys]
        cells = cells if not note else [note] + [""] * (len(keys) - 1)
        rows.append([target, str(int(group["n_decoys"].iloc[0])), *cells])
    summary = evaluation.qa_summary.set_index("ranker")
    if len(summary):
        if what == "hits":
            cells = [hit_rate(summary.loc[k], "targets_") for k in keys]
        else:
            cells = [(_fmt(summary.loc[k, "ranking_loss_mean"]) + (f" ± {_fmt(summary.loc[k, 'ranking_loss_std'])}"
                      if _fmt(summary.loc[k, "ranking_loss_std"]) else "")) for k in keys]
        rows.append(["Summary", "", *cells])
    return headers, rows


def agreement_rows(evaluation: Evaluation) -> list[list[str]]:
    return [[r.target, str(int(r.n)), _fmt(r.lddt_pearson), _fmt(r.lddt_spearman), _fmt(r.lddt_mae),
             _fmt(r.mean_plddt), _fmt(r.true_lddt_mean)] for r in evaluation.agreement.itertuples(index=False)]


AGREEMENT_HEADERS = ["Target", "n", "Pearson ↑", "Spearman ↑", "MAE ↓", "mean pLDDT", "mean true LDDT"]


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "|".join("---" for _ in headers) + "|", *map(line, rows)])


def to_markdown(evaluation: Evaluation, title: str = "EGR evaluation") -> str:
    """The tables as markdown (empty cell = not computable)."""
    counts = evaluation.status_counts
    methods = ", ".join(method_label(m) for m in evaluation.methods) or "none scored"
    parts = [f"# {title}", "",
             f"Decoys: {counts['ok']} ok, {counts['skipped']} skipped (earlier run), {counts['failed']} failed. "
             f"Methods compared with the decoy: {methods}. An empty cell is a value that could not be computed.", ""]
    parts += ["## Refinement", "",
              "Δ = refined − decoy, mean over decoys with both scores. FI-DockQ: % of decoys whose DockQ improved. "
              "API-DockQ: mean relative DockQ improvement (Δ / DockQ of the decoy) over the improved decoys, %.", ""]
    parts += [_markdown_table(REFINEMENT_HEADERS, refinement_rows(evaluation)) if len(evaluation.refinement)
              else "No refinement scores.", ""]
    n = evaluation.top_n
    parts += [f"## QA: Top-{n} hit rate", "",
              f"a/b/c = decoys of acceptable-or-better / medium-or-better / high quality (DockQ ≥ 0.23 / 0.49 / "
              f"0.80) among the {n} ranked first. Summary: targets with at least one such decoy in the top {n} "
              f"(Random: expected number).", ""]
    if len(evaluation.qa):
        parts += [_markdown_table(*qa_pivot(evaluation, "hits")), "",
                  "## QA: ranking loss", "",
                  "Best DockQ among the target's decoys − DockQ of the decoy ranked first (lower is better). "
                  "Summary: mean ± standard deviation over targets.", "",
                  _markdown_table(*qa_pivot(evaluation, "loss")), ""]
    else:
        parts += ["No QA ranking (needs decoys with a DockQ against a native).", ""]
    if len(evaluation.agreement):
        parts += ["## Predicted vs true LDDT-Cα", "",
                  "Per decoy: agreement of EGR's per-residue prediction with the true LDDT-Cα of the refined "
                  "structure; here the mean over decoys.", "",
                  _markdown_table(AGREEMENT_HEADERS, agreement_rows(evaluation)), ""]
    if evaluation.notes:
        parts += ["## Notes", "", *(f"- {note}" for note in evaluation.notes), ""]
    return "\n".join(parts)


def write_evaluation(evaluation: Evaluation, outdir: Path | str) -> list[Path]:
    """Write ``evaluation.tsv`` and ``evaluation.md`` into ``outdir``; returns their paths."""
    outdir = Path(outdir)
    paths = [outdir / "evaluation.tsv", outdir / "evaluation.md"]
    atomic_write_text(paths[0], to_tsv(evaluation))
    atomic_write_text(paths[1], to_markdown(evaluation))
    return paths
