"""``egr run --select best-predicted``: per decoy, keep the structure EGR predicts best.

Every structure a decoy has in the run is a candidate: the cleaned input (``decoy``), EGR's refinement
(``egr``; where the gate kept the input it holds the input's coordinates, a candidate equal to the input)
and each comparison refiner's that produced one. Each candidate is scored the same way, whatever made
it: its structure file is read (:func:`egr.structure.read_decoy`), its surface computed with the run's
surface backend and EGR's docking head predicts its DockQ (:func:`egr.refine.predict_docking`, one
structure per call, so a value does not depend on what else is scored). The input is rescored too rather
than taken from ``<id>_scores.json``, so that all candidates go through one code path. The highest
prediction wins; ties go to the earlier candidate in registry order, so the input wins a tie.

The choice is written to ``<id>_selection.json``::

    {"rule": "best-predicted", "selected": "openmm",
     "candidates": {"decoy": 0.71, "egr": 0.71, "openmm": 0.74},
     "missing": {"haddock_mdref": "failed: ..."},
     "files": {"decoy": "<sha256>", ...}, "model_sha256": "...", "surface_backend": "auto",
     "surface_used": {"decoy": "msms", "egr": "msms", "openmm": "msms"}}

``surface_backend`` is the run's option; ``surface_used`` is what each candidate's surface came from
(``msms``, ``builtin``, or ``msms+builtin`` where MSMS failed on some chain and the built-in surface
stood in, which ``auto`` allows). A record is reused (resume) when the rule, the model, the surface
backend and the bytes of every candidate file (absent ones included) are those it recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from egr import layout
from egr.io import atomic_write_json, file_sha256, one_line

BEST_PREDICTED = "best-predicted"  # the one rule so far
RULES = ("none", BEST_PREDICTED)  # --select


def candidate_files(outdir: Path | str, decoy_id: str, methods: tuple[str, ...]) -> dict[str, str | None]:
    """The SHA-256 of each method's structure file (None where it has none)."""
    return {m: file_sha256(layout.structure(outdir, decoy_id, m)) for m in methods}


def reusable_selection(outdir: Path | str, decoy_id: str, files: dict[str, str | None], model_sha256: str | None,
                       surface_backend: str) -> dict | None:
    """The earlier ``<id>_selection.json`` if it still holds for these candidate files
    (:func:`candidate_files`), model and backend."""
    try:
        earlier = json.loads(layout.selection_json(outdir, decoy_id).read_text())
    except (OSError, ValueError):
        return None
    if (earlier.get("rule") == BEST_PREDICTED and earlier.get("model_sha256") == model_sha256
            and earlier.get("surface_backend") == surface_backend
            and earlier.get("files") == files):
        return earlier
    return None


def _missing_reason(outdir: Path | str, decoy_id: str, method: str) -> str:
    """Why ``method`` has no structure: its record's status and reason, where it wrote one."""
    try:
        record = json.loads(layout.method_record(outdir, decoy_id, method).read_text())
    except (OSError, ValueError):
        return "no structure"
    reason = record.get("reason") or "no structure"
    return f"{record.get('status', 'no structure')}: {reason}"


def predicted_dockq(path: Path, model, device: str, surface_backend: str, msms: str | None = None
                    ) -> tuple[float | None, str]:
    """EGR's predicted DockQ of the structure file ``path``, scored like any candidate, and the surface
    backend(s) its surface came from (``msms``, ``builtin`` or both joined by ``+``)."""
    from egr.refine import predict_docking
    from egr.structure import read_decoy
    from egr.surface import compute_surface

    complex_, _ = read_decoy(path)
    surface = compute_surface(complex_.coords, complex_.elements, complex_.chain_ids, backend=surface_backend,
                              msms_exe=msms)
    used = "+".join(sorted(set(surface.backend.tolist())))
    return predict_docking(model, [complex_], [surface.proximity], device)[0].pred_dockq, used


def select_best_predicted(outdir: Path | str, decoy_id: str, methods: tuple[str, ...], model, device: str,
                          surface_backend: str, msms: str | None = None, model_sha256: str | None = None,
                          files: dict[str, str | None] | None = None) -> dict:
    """Score each candidate of ``methods`` (``decoy`` first), choose the highest predicted DockQ (ties: the
    earlier) and write ``<id>_selection.json``; returns the record. ``files``: the candidates'
    :func:`candidate_files`, where the caller has them. ``selected`` is None when no candidate could be scored."""
    files = files if files is not None else candidate_files(outdir, decoy_id, methods)
    candidates: dict[str, float] = {}
    surface_used: dict[str, str] = {}
    missing: dict[str, str] = {}
    for method in methods:
        path = layout.structure(outdir, decoy_id, method)
        if files[method] is None:
            missing[method] = _missing_reason(outdir, decoy_id, method)
            continue
        try:
            value, surface_used[method] = predicted_dockq(path, model, device, surface_backend, msms)
        except Exception as exc:  # an unreadable candidate is not a candidate; the others still compete
            missing[method] = f"not scored: {one_line(exc)}"
            continue
        if value is None:
            missing[method] = "no docking estimate (fewer than two chains)"
            continue
        candidates[method] = value
    selected = None
    for method, value in candidates.items():  # in ``methods`` order: strictly higher replaces, ties keep
        if selected is None or value > candidates[selected]:
            selected = method
    record = {"rule": BEST_PREDICTED, "selected": selected, "candidates": candidates, "missing": missing,
              "files": files, "model_sha256": model_sha256, "surface_backend": surface_backend,
              "surface_used": surface_used}
    atomic_write_json(layout.selection_json(outdir, decoy_id), record)
    return record
