"""Run-level evaluation of a finished results folder (``egr evaluate``): refinement and QA tables.

Input: ``summary.tsv`` of an ``egr run`` (or of the Nextflow pipeline), one row per decoy. The score
columns it may hold, per method ``m`` (``decoy`` = the input; ``egr`` and the comparison refiners):
``dockq_<m>``, ``fnat_<m>``, ``irmsd_<m>``, ``lrmsd_<m>`` and, for ``m != decoy``,
``delta_<metric>_<m>`` (refined − decoy; recomputed from the two columns when absent) and
``seconds_<m>`` (for EGR, ``seconds_total`` when there is no ``seconds_egr``; counted only where
``status_<m>`` is ``ok`` when the run has that column). An empty cell is a value that could not be
computed: it stays out of every mean and count, it is never taken as 0.

Tables (definitions as in docs/design.md, "Metrics"; layouts of Tables 1–3 of the EGR paper, Morehead
et al.):

* **refinement** — per target and over all decoys (target ``(all)``, pooled over decoys, not a mean of
  per-target means), per method: decoys scored ``n``, mean ΔDockQ, ΔiRMSD, ΔLRMSD, ΔFnat,
  FI-DockQ = % of decoys whose DockQ improved by more than :data:`DOCKQ_TOLERANCE` (0.001, DockQ's printed
  precision: a smaller Δ is not a change DockQ resolves), API-DockQ = mean of Δ/DockQ_decoy over those
  improved decoys, in % (decoys with DockQ_decoy = 0 have no relative change and are left out of it),
  mean seconds per decoy.
* **qa** — per target, per ranker: Top-1 and Top-N hit a/b/c (``top1_<class>``: 1 when the decoy ranked
  first is acceptable / medium / high, DockQ ≥ 0.23 / 0.49 / 0.80; ``hits_<class>``: decoys of the class
  among the N ranked first, N = 10 by default), ranking loss (best DockQ of the target's decoys − DockQ
  of the decoy ranked first) and the Spearman correlation of score and DockQ over the target's scored
  decoys (at least 3). The truth is the decoys' own DockQ (``dockq_decoy``). A decoy without a score
  ranks after all scored ones (and stays out of the correlations); ties keep input order. A target with
  a single decoy has no ranking to compare: its cells are empty, with a note.
* **qa_summary** — per ranker over the targets where it is defined: targets whose top 1 / top N holds at
  least one acceptable / medium / high decoy (``top1_<class>``, ``targets_<class>``; paper Table 2
  "Summary"), ranking loss mean ± sample standard deviation (paper Table 3); and over all decoys pooled
  (every decoy with a target and a DockQ, single-decoy targets included): ``spearman`` (score vs DockQ,
  average ranks for ties), ``auc_acceptable`` (ROC AUC of the score for DockQ ≥ 0.23 — the Mann–Whitney
  probability that an acceptable decoy scores above an incorrect one, ties counted ½) and ``n_decoys``
  (the scored decoys these use); ``spearman_per_target`` is the mean of the per-target Spearman over
  targets with at least 3 scored decoys, because pooling mixes targets (a score that only separates
  easy from hard targets correlates with DockQ pooled without ranking any target's decoys).
* **agreement** — per target and overall: mean over decoys of the per-decoy Pearson / Spearman / MAE
  between predicted and true LDDT-Cα, and the means of predicted and true LDDT-Cα.

Rankers (all scores higher = better): EGR's ``pred_dockq`` (its predicted DockQ of the input decoy), any
other numeric column asked for (``COLUMN:lower`` when lower is better: its negative is used), and the
references, always computed: ``contacts_clashes`` (:mod:`egr.physics`: inter-chain heavy-atom pairs
< 5 Å − 10 × pairs < 3 Å of the cleaned input decoy), ``inter_chain_contacts`` (the first term alone:
where a docking program's right poses interpenetrate, as rigid poses of unbound partners do, the contact
count ranks them up while the clash term pushes them down), ``input_order`` (the summary's row order; as a
score, −(position of the decoy within its target, counting the target's decoys with a DockQ in summary
order), so decoys at the same position in different targets tie in the pooled measures), ``random``
(exact expectations over uniformly random rankings, which is what averaging seeded shuffles converges
to, without sampling noise: top-N hits hypergeometric, top-1 = the fraction of the target's decoys in the
class, Spearman 0, AUC ½) and ``oracle`` (ranked by DockQ itself: the best any ranker can do). A ranker
whose column is missing from the summary (``pred_dockq`` or a physics column of an older run) is
listed with empty cells and a note. Scores from outside the run (``--external-scores``: a TSV of ``id``
and score columns, e.g. the docking program's own score) join the rankers by decoy ID; a decoy the file
does not list is unscored for them. The reference names are reserved: a score column of that name is
ignored.

Files: ``evaluation.tsv`` (long format: ``section, target, method, metric, value``) and
``evaluation.md`` (the same as markdown tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from egr import layout
from egr.io import atomic_write_text

CAPRI_CLASSES = {"acceptable": 0.23, "medium": 0.49, "high": 0.80}  # DockQ lower bounds
DELTA_METRICS = ("dockq", "irmsd", "lrmsd", "fnat")
# A ΔDockQ counts as a change only beyond this: DockQ v2 prints its scores to 3 decimals, and a refiner that
# moves DockQ by less has not changed the model in any way DockQ reports. Used for FI-DockQ, API-DockQ,
# n_improved and the report's colours.
DOCKQ_TOLERANCE = 1e-3
OVERALL = "(all)"  # target label of the pooled rows; not a valid sanitised decoy ID (parentheses)
DEFAULT_SCORES = ("pred_dockq",)  # EGR's own ranker; may be absent from older runs' summaries
REFERENCE_RANKERS = {"contacts_clashes": "Contacts − 10×clashes", "inter_chain_contacts": "Contacts (< 5 Å)",
                     "input_order": "Input order", "random": "Random (expected)", "oracle": "Best possible"}
# references read from a summary column (may be absent)
REFERENCE_COLUMNS = ("contacts_clashes", "inter_chain_contacts")
SCORE_LABELS = {"pred_dockq": "EGR predicted DockQ", "pred_dockq_refined": "EGR predicted DockQ (refined)",
                "mean_plddt": "EGR pLDDT", "interface_plddt": "EGR interface pLDDT", "haddock_score": "HADDOCK score"}
# Scores a results folder may hold beside summary.tsv, ranked by whenever present: file -> column spec.
RUN_SCORE_FILES = {layout.HADDOCK_SCORES_TSV: "haddock_score:lower"}
MIN_SPEARMAN = 3  # decoys a Spearman correlation needs (per target and pooled)
# Columns that hold text; every other column is numeric where all its non-empty cells parse as numbers.
TEXT_COLUMNS = ("id", "input", "status", "reason", "target", "surface_backend", "warnings", "score_notes",
                "selected")
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
    """Rankers for EGR's score (:data:`DEFAULT_SCORES`), the extra ``score_columns`` (``NAME`` or
    ``NAME:lower``) and the references (:data:`REFERENCE_RANKERS`), in that order. A score column named
    like a reference is left out (the reference is there anyway). Raises ValueError on a malformed entry."""
    rankers: list[Ranker] = []
    for spec in (*DEFAULT_SCORES, *score_columns):
        name, _, direction = spec.strip().partition(":")
        if not name or direction not in ("", "lower", "higher"):
            raise ValueError(f"score column {spec!r}: expected NAME or NAME:lower")
        if any(r.key == name for r in rankers) or name in REFERENCE_RANKERS:
            continue
        lower = direction == "lower"
        label = SCORE_LABELS.get(name, name) + (" (lower is better)" if lower else "")
        rankers.append(Ranker(name, label, name, not lower))
    rankers += [Ranker(key, label, key if key in REFERENCE_COLUMNS else None)
                for key, label in REFERENCE_RANKERS.items()]
    return tuple(rankers)


def evaluate_results(results_dir: Path | str, score_columns: tuple[str, ...] | list[str] = (),
                     top_n: int = 10, external_scores: Path | str | None = None,
                     subset: Path | str | None = None) -> Evaluation:
    """Evaluate the ``summary.tsv`` of ``results_dir``; see :func:`evaluate_run`."""
    return evaluate_run(results_dir, score_columns, top_n, external_scores, subset)[1]


def evaluate_run(results_dir: Path | str, score_columns: tuple[str, ...] | list[str] = (), top_n: int = 10,
                 external_scores: Path | str | None = None,
                 subset: Path | str | None = None) -> tuple[pd.DataFrame, Evaluation]:
    """The summary of ``results_dir`` with every score to rank by (:func:`run_scores`), restricted to the
    decoys of the samplesheet ``subset`` when given (:func:`only_decoys_of`), and its evaluation
    (:func:`evaluate_frame`), whose notes include those of both."""
    frame, score_columns, notes = run_scores(results_dir, score_columns, external_scores)
    if subset is not None:
        frame, subset_note = only_decoys_of(frame, Path(subset))
        notes = (*notes, subset_note)
    evaluation = evaluate_frame(frame, score_columns, top_n)
    return frame, replace(evaluation, notes=(*evaluation.notes, *notes))


def only_decoys_of(frame: pd.DataFrame, samplesheet: Path) -> tuple[pd.DataFrame, str]:
    """The rows of ``frame`` of the decoys that ``samplesheet`` lists (summary order kept: it is the input
    order ranker's), and a note of how many were kept. A listed decoy is the summary row whose ``input`` is
    its file as written in the samplesheet or as resolved from it, else the row of the ID ``egr run`` gives
    it, if that row's file has the same name (a run's IDs of two files of one name differ by a ``_2``
    suffix that the samplesheet alone cannot tell). Raises ValueError when the samplesheet cannot be read
    or names none of the summary's decoys."""
    from egr.runner import InputError, collect_inputs

    try:
        listed = collect_inputs(samplesheet=samplesheet)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    inputs = frame["input"].astype(str) if "input" in frame else pd.Series("", index=frame.index)
    row_of_input = {value: i for i, value in zip(frame.index, inputs) if value}
    row_of_id = dict(zip(frame["id"], frame.index))
    kept = set()
    for item in listed:
        rows = [row_of_input[key] for key in (item.input, str(item.path), str(item.path.resolve()))
                if key in row_of_input]
        if not rows and item.id in row_of_id and Path(inputs[row_of_id[item.id]]).name == item.path.name:
            rows = [row_of_id[item.id]]
        kept.update(rows[:1])
    if not kept:
        raise ValueError(f"{samplesheet}: none of its {len(listed)} decoys is in the summary")
    chosen = frame.loc[sorted(kept)].reset_index(drop=True)
    absent = len(listed) - len(chosen)
    return chosen, (f"evaluated {len(chosen)} of the summary's {len(frame)} decoys: those of {samplesheet}"
                    + (f" ({absent} of its decoys are not in the summary)" if absent else ""))


def run_scores(results_dir: Path | str, score_columns: tuple[str, ...] | list[str] = (),
               external_scores: Path | str | None = None) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """The summary of ``results_dir`` with every score to rank by, the score columns to rank, and notes: the
    columns asked for, those of the run's own score files (:data:`RUN_SCORE_FILES`, e.g. the HADDOCK score
    that ``egr haddock-score`` wrote) and those of ``external_scores`` (:func:`with_external_scores`).
    A run's own score file that does not fit the summary (left from another run, say) is left out with a
    note; an ``external_scores`` file the user named that does not fit raises ValueError."""
    frame = read_summary(results_dir)
    listed = {spec.partition(":")[0] for spec in score_columns}
    score_columns = tuple(score_columns)
    notes: list[str] = []
    files = [(Path(results_dir) / name, spec) for name, spec in RUN_SCORE_FILES.items()]
    files += [(Path(external_scores), None)] if external_scores is not None else []
    for path, spec in files:
        if spec is not None and not path.is_file():
            continue
        try:
            frame, names = with_external_scores(frame, path)
        except ValueError as exc:
            if spec is None:
                raise
            notes.append(f"{exc}; not ranked by")
            continue
        for name in names:
            if name not in listed:
                score_columns += (spec if spec and spec.partition(":")[0] == name else name,)
                listed.add(name)
    return frame, score_columns, tuple(notes)


def with_external_scores(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``frame`` with the numeric columns of the TSV ``path`` (an ``id`` column, then one column per score:
    a docking program's own score, say; higher = better unless named ``NAME:lower`` in the score columns)
    joined by decoy ID, and those columns' names. Raises ValueError (one line) on a file that cannot serve."""
    try:
        scores = pd.read_csv(path, sep="\t", dtype={"id": str})
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable external scores ({exc})") from None
    names = tuple(c for c in scores.columns if c != "id")
    if "id" not in scores or not names:
        raise ValueError(f"{path}: external scores need an 'id' column and at least one score column")
    clashes = [c for c in names if c in frame.columns or c in REFERENCE_RANKERS]
    if clashes:
        raise ValueError(f"{path}: column(s) {', '.join(clashes)} already name summary columns or references")
    bad = [c for c in names if not pd.api.types.is_numeric_dtype(scores[c])]
    if bad:
        raise ValueError(f"{path}: column(s) {', '.join(bad)} are not numeric")
    if scores["id"].duplicated().any():
        raise ValueError(f"{path}: decoy ID {scores['id'][scores['id'].duplicated()].iloc[0]!r} appears twice")
    if not frame["id"].isin(scores["id"]).any():
        raise ValueError(f"{path}: none of its IDs is a decoy of this run")
    return frame.merge(scores, on="id", how="left", validate="one_to_one"), names


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
        if ranker.column and ranker.column not in frame and ranker.key not in (*DEFAULT_SCORES, *REFERENCE_COLUMNS):
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


def dockq_improved(delta: pd.Series | float) -> pd.Series | bool:
    """True where ΔDockQ is an improvement: more than :data:`DOCKQ_TOLERANCE` (False for NaN). Compared at
    summary.tsv's 4 decimals, so a Δ recomputed from two columns (0.4001 − 0.3991 = 0.0010000000000000009)
    does not pass the tolerance on float error alone."""
    return np.round(delta, 4) > DOCKQ_TOLERANCE


def refinement_table(frame: pd.DataFrame, methods: tuple[str, ...]) -> pd.DataFrame:
    """Paper Table 1 per target and pooled (target :data:`OVERALL`); one row per (target, method)."""
    columns = ["target", "method", "n", "n_improved", "delta_dockq", "delta_irmsd", "delta_lrmsd", "delta_fnat",
               "fi_dockq", "api_dockq", "seconds"]
    if not methods:
        return pd.DataFrame(columns=columns)
    long = pd.concat([method_deltas(frame, m) for m in methods], ignore_index=True)
    delta = long["delta_dockq"]
    scored = delta.notna()
    long["improved"] = dockq_improved(delta).astype(float).where(scored)
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


def ranker_scores(pool: pd.DataFrame, frame: pd.DataFrame, ranker: Ranker) -> pd.Series | None:
    """Per decoy of ``pool`` (rows of ``frame`` with a target and a DockQ, column ``truth``): the score
    ``ranker`` orders by, higher = better (NaN = unscored); None for ``random``, which has no score.
    ``input_order``: −(position of the decoy within its target, in summary order, counting from 1);
    ``oracle``: the DockQ itself; a ``COLUMN:lower`` column: its negative."""
    if ranker.key == "random":
        return None
    if ranker.key == "input_order":
        return -(pool.groupby("target", sort=False).cumcount() + 1.0)
    if ranker.key == "oracle":
        return pool["truth"].astype(float)
    values = _numeric(frame, ranker.column).reindex(pool.index)
    return values if ranker.higher_is_better else -values


def _ranks(pool: pd.DataFrame, score: pd.Series) -> pd.Series:
    """Rank (1 = first) of each decoy within its target by ``score`` (higher first); ties and unscored
    decoys keep input order, unscored after all scored ones."""
    return score.groupby(pool["target"], sort=False).rank(method="first", ascending=False, na_option="bottom")


def spearman_by_group(score: pd.Series, truth: pd.Series, groups: pd.Series) -> pd.Series:
    """Spearman correlation of ``score`` and ``truth`` per group (Pearson of the average ranks, so ties
    share a rank, as in scipy.stats.spearmanr), over the pairs where both are known; NaN for a group with
    fewer than :data:`MIN_SPEARMAN` pairs or a constant side. Indexed by group, in order of appearance."""
    data = pd.DataFrame({"x": score, "y": truth, "g": groups})
    order = pd.unique(data["g"])
    data = data.dropna(subset=["x", "y"])
    by = data.groupby("g", sort=False)
    dx = by["x"].rank(method="average")
    dy = by["y"].rank(method="average")
    dx = dx - dx.groupby(data["g"], sort=False).transform("mean")
    dy = dy - dy.groupby(data["g"], sort=False).transform("mean")
    sums = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy, "g": data["g"]}).groupby("g", sort=False).sum()
    n = by.size()
    # average ranks that differ do so by at least 1/2: a sum of squares below 1e-9 is a constant side
    defined = (n >= MIN_SPEARMAN) & (sums["xx"] > 1e-9) & (sums["yy"] > 1e-9)
    r = (sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])).clip(-1.0, 1.0).where(defined)
    return r.reindex(order)


def roc_auc(score: pd.Series, positive: pd.Series) -> float:
    """ROC AUC of ``score`` (higher = more likely positive) for the boolean ``positive``, over decoys
    with a score: the Mann–Whitney probability that a positive scores above a negative, ties counted ½.
    NaN when there are no positives or no negatives."""
    scored = score.notna()
    score, positive = score[scored], positive[scored].astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = score.rank(method="average")  # a tie of a positive and a negative adds ½ to the U statistic
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ranked_metrics(pool: pd.DataFrame, ranks: pd.Series, top_n: int) -> pd.DataFrame:
    """Per target: hits per CAPRI class in the top 1 and top N, and DockQ of the first-ranked decoy."""
    top, first = ranks <= top_n, ranks == 1
    by_target = pool["target"]
    table = pd.DataFrame({
        **{f"top1_{c}": ((pool["truth"] >= t) & first).groupby(by_target, sort=False).sum()
           for c, t in CAPRI_CLASSES.items()},
        **{f"hits_{c}": ((pool["truth"] >= t) & top).groupby(by_target, sort=False).sum()
           for c, t in CAPRI_CLASSES.items()}}).astype(float)
    table["top1_dockq"] = pool["truth"][first].groupby(by_target[first], sort=False).first()
    return table


def _random_metrics(pool: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Expected top-1 / top-N hits and first-ranked DockQ under a uniformly random ranking, per target."""
    groups = pool.groupby("target", sort=False)["truth"]
    n = groups.size()
    shown = np.minimum(n, top_n)
    classes = {c: (pool["truth"] >= t).groupby(pool["target"], sort=False).sum() for c, t in CAPRI_CLASSES.items()}
    # each decoy is first with probability 1/n and in a random top N with probability N/n
    table = pd.DataFrame({**{f"top1_{c}": good / n for c, good in classes.items()},
                          **{f"hits_{c}": good * shown / n for c, good in classes.items()}}).astype(float)
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


def pooled_measures(pool: pd.DataFrame, score: pd.Series | None) -> dict[str, float]:
    """Spearman and acceptable-class ROC AUC of ``score`` (see :func:`ranker_scores`) against DockQ over
    all decoys of ``pool`` with a score, and their number. ``score`` None (random): the exact
    expectations, Spearman 0 and AUC ½, where they are defined (the oracle's values are)."""
    truth = pool["truth"]
    acceptable = truth >= CAPRI_CLASSES["acceptable"]
    everyone = pd.Series(0, index=pool.index)
    if score is None:
        r = spearman_by_group(truth, truth, everyone).iloc[0] * 0.0
        auc = 0.5 if math.isfinite(roc_auc(truth, acceptable)) else float("nan")
        return {"spearman": float(r), "auc_acceptable": auc, "n_decoys": len(pool)}
    return {"spearman": float(spearman_by_group(score, truth, everyone).iloc[0]),
            "auc_acceptable": roc_auc(score, acceptable), "n_decoys": int(score.notna().sum())}


def qa_tables(frame: pd.DataFrame, rankers: tuple[Ranker, ...], top_n: int
              ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per-target ranking metrics (paper Tables 2–3), their summary per ranker, and notes."""
    qa_columns = ["target", "ranker", "n_decoys", "top_n", "hits_acceptable", "hits_medium", "hits_high",
                  "top1_dockq", "best_dockq", "ranking_loss", "top1_acceptable", "top1_medium", "top1_high",
                  "spearman", "note"]
    summary_columns = ["ranker", "n_targets", "targets_acceptable", "targets_medium", "targets_high",
                       "ranking_loss_mean", "ranking_loss_std", "top1_acceptable", "top1_medium", "top1_high",
                       "spearman", "spearman_per_target", "auc_acceptable", "n_decoys"]
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
        score = ranker_scores(pool, frame, ranker)
        if score is None:
            metrics = _random_metrics(pool, top_n)
            # the expectation over random rankings is 0 wherever the correlation is defined
            metrics["spearman"] = spearman_by_group(pool["truth"], pool["truth"], pool["target"]) * 0.0
        else:
            metrics = _ranked_metrics(pool, _ranks(pool, score), top_n)
            metrics["spearman"] = spearman_by_group(score, pool["truth"], pool["target"])
        if ranker.column:
            if ranker.column not in frame:
                notes.append(f"{ranker.label}: no {ranker.column} column in summary.tsv (a run from before "
                             f"it existed?): the ranker is listed with empty cells")
            elif score.isna().all():
                notes.append(f"{ranker.label}: no {ranker.column} values: the ranker is listed with empty cells")
            unscored = score.isna().groupby(pool["target"], sort=False).all()
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
        if not defined.any():
            with_hit = {c: np.nan for c in CAPRI_CLASSES}
            first_hit = dict(with_hit)
        elif score is None:
            with_hit = _random_targets_with_hit(pool[pool["target"].isin(n_decoys.index[defined])], top_n)
            first_hit = {c: float(metrics.loc[defined, f"top1_{c}"].sum()) for c in CAPRI_CLASSES}
        else:
            with_hit = {c: float((metrics.loc[defined, f"hits_{c}"] >= 1).sum()) for c in CAPRI_CLASSES}
            first_hit = {c: float((metrics.loc[defined, f"top1_{c}"] >= 1).sum()) for c in CAPRI_CLASSES}
        loss = metrics.loc[defined, "ranking_loss"]
        per_target = metrics["spearman"].dropna()
        summaries.append({"ranker": ranker.key, "n_targets": int(defined.sum()),
                          **{f"targets_{c}": v for c, v in with_hit.items()},
                          "ranking_loss_mean": loss.mean() if len(loss) else np.nan,
                          "ranking_loss_std": loss.std(ddof=1) if len(loss) > 1 else np.nan,
                          **{f"top1_{c}": v for c, v in first_hit.items()},
                          **pooled_measures(pool, score),
                          "spearman_per_target": per_target.mean() if len(per_target) else np.nan})
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
            notes.append(f"{method_label(method)}: {counts}" + (f" (e.g. {first})" if first else ""))
    return notes


# ------------------------------------------------------------------------------------------------
# Writers
# ------------------------------------------------------------------------------------------------


def method_label(method: str) -> str:
    return layout.label(method)


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
    """Targets × rankers: ``what`` = 'hits' (Top-N a/b/c, paper Table 2), 'top1' (Top-1 a/b/c) or 'loss'
    (paper Table 3); the last row is the summary over targets."""
    labels = {r.key: r.label for r in evaluation.rankers}
    keys = [r.key for r in evaluation.rankers]
    headers = ["Target", "n", *(labels[k] for k in keys)]
    rows = []
    qa = evaluation.qa
    prefix = {"hits": "hits_", "top1": "top1_"}.get(what)
    for target, group in qa.groupby("target", sort=True):
        by_ranker = group.set_index("ranker")
        note = next((n for n in group["note"] if n.startswith("single")), "")
        cells = [hit_rate(by_ranker.loc[k], prefix) if prefix else _fmt(by_ranker.loc[k, "ranking_loss"])
                 for k in keys]
        cells = cells if not note else [note] + [""] * (len(keys) - 1)
        rows.append([target, str(int(group["n_decoys"].iloc[0])), *cells])
    summary = evaluation.qa_summary.set_index("ranker")
    if len(summary):
        if prefix:
            cells = [hit_rate(summary.loc[k], "targets_" if what == "hits" else "top1_") for k in keys]
        else:
            cells = [_loss_cell(summary.loc[k]) for k in keys]
        rows.append(["Summary", "", *cells])
    return headers, rows


def _loss_cell(row: pd.Series | dict) -> str:
    """'mean ± sd' of a qa_summary row's ranking loss ('mean' alone with one target; '' with none)."""
    mean, spread = _fmt(row["ranking_loss_mean"]), _fmt(row["ranking_loss_std"])
    return mean + (f" ± {spread}" if mean and spread else "")


def ranker_headers(top_n: int) -> list[str]:
    """Column headers of :func:`ranker_rows`."""
    return ["Ranker", "Targets", "Top-1 a/b/c ↑", f"Top-{top_n} a/b/c ↑", "Ranking loss ↓ (mean ± sd)",
            "Spearman ↑ (pooled)", "Spearman ↑ (per-target mean)", "AUC acceptable ↑", "Decoys"]


def ranker_rows(evaluation: Evaluation) -> list[tuple[str, list[str]]]:
    """The rankers side by side, one row each (key, display cells under :func:`ranker_headers`): targets
    ranked, targets with a hit in the top 1 / top N, ranking loss, pooled and per-target Spearman, AUC for
    acceptable decoys, decoys in the pooled measures. Empty cell = not computable."""
    labels = {r.key: r.label for r in evaluation.rankers}
    rows = []
    for row in evaluation.qa_summary.to_dict("records"):
        rows.append((row["ranker"], [labels.get(row["ranker"], row["ranker"]), str(int(row["n_targets"])),
                                     hit_rate(row, "top1_"), hit_rate(row, "targets_"), _loss_cell(row),
                                     _fmt(row["spearman"]), _fmt(row["spearman_per_target"]),
                                     _fmt(row["auc_acceptable"]), str(int(row["n_decoys"]))]))
    return rows


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
              "Δ = refined − decoy, mean over decoys with both scores. FI-DockQ: % of decoys whose DockQ improved "
              f"by more than {DOCKQ_TOLERANCE:g} (DockQ's printed precision). "
              "API-DockQ: mean relative DockQ improvement (Δ / DockQ of the decoy) over the improved decoys, %.", ""]
    parts += [_markdown_table(REFINEMENT_HEADERS, refinement_rows(evaluation)) if len(evaluation.refinement)
              else "No refinement scores.", ""]
    n = evaluation.top_n
    if len(evaluation.qa):
        parts += ["## QA: rankers side by side", "",
                  "EGR's score beside the references a user could compute: contacts − 10×clashes (inter-chain "
                  "heavy-atom pairs < 5 Å − 10 × pairs < 3 Å of the input decoy), input order, a random ranking "
                  "(exact expectation) and the best possible (ranked by DockQ). Truth: DockQ of the input decoy. "
                  f"Top-1 / Top-{n} a/b/c: targets whose first / first {n} ranked decoys hold at least one "
                  "acceptable / medium / high decoy (DockQ ≥ 0.23 / 0.49 / 0.80; Random: expected number). "
                  "Ranking loss: best DockQ − DockQ of the decoy ranked first, over targets. Spearman (pooled) "
                  "and AUC acceptable (ROC AUC for DockQ ≥ 0.23, ties ½) are over all decoys of all targets; "
                  f"Spearman (per-target mean) averages the targets with ≥ {MIN_SPEARMAN} scored decoys. "
                  "Decoys: those with a score, used in the pooled measures. Input order scores a decoy "
                  "−(its position within its target).", "",
                  _markdown_table(ranker_headers(n), [cells for _, cells in ranker_rows(evaluation)]), ""]
    parts += [f"## QA: Top-{n} hit rate", "",
              f"a/b/c = decoys of acceptable-or-better / medium-or-better / high quality (DockQ ≥ 0.23 / 0.49 / "
              f"0.80) among the {n} ranked first. Summary: targets with at least one such decoy in the top {n} "
              f"(Random: expected number).", ""]
    if len(evaluation.qa):
        parts += [_markdown_table(*qa_pivot(evaluation, "hits")), "",
                  "## QA: Top-1 hit rate", "",
                  "a/b/c = 1 where the decoy ranked first is acceptable-or-better / medium-or-better / high "
                  "(Random: probability). Summary: number of targets (Random: expected number).", "",
                  _markdown_table(*qa_pivot(evaluation, "top1")), "",
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
