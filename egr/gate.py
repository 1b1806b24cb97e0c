"""The never-worse gate: keep a refined decoy only where EGR's own docking-quality estimate predicts a gain.

EGR's docking-quality head (:meth:`egr.model.EGR.docking_from_features`) scores the input (from the
input pass) and the refined structure (from the refinement pass) with the same network, at the same
interface atoms (:func:`egr.refine.docking_estimates`). The predicted gain is
``pred_dockq(refined) − pred_dockq(input)``; the refined coordinates are kept when it exceeds a margin
calibrated on the validation split (stored in the weights' JSON sidecar under :data:`GATE_KEY`) and the
refined structure keeps the input's chemistry (:func:`egr.refine.physical_problems`). Otherwise the
input coordinates are written, with the per-residue pLDDT of the network's input pass. Both estimates
come from one head on one scale, so their difference is meaningful even where the absolute value is
off by a constant. A structure without two chains has no docking estimate, and the gate keeps its input.

The rule (:func:`keeps_refinement`) and the sidecar record (:func:`gate_record`, :func:`stored_margin`) live
here only; training's calibration and counts, refinement and the weights' provenance all call them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


GATE_KEY = "gate"  # key of the gate record in the weights' JSON sidecar
GATE_RULE = "keep refined iff pred_dockq(refined) - pred_dockq(input) > margin"


@dataclass(frozen=True)
class GateDecision:
    """keep_refined: use the refined coordinates; predicted_gain: pred_dockq(refined) − pred_dockq(input)
    (DockQ units, NaN where either is undefined); the two estimates are also given."""

    keep_refined: bool
    predicted_gain: float
    pred_dockq_refined: float
    pred_dockq_input: float


def keeps_refinement(predicted_gain: float, margin: float) -> bool:
    """The gate's rule: keep the refined structure iff the predicted gain is defined (finite) and > ``margin``."""
    return bool(math.isfinite(predicted_gain) and predicted_gain > margin)


def gate_record(margin: float, calibrated_on: str, n_decoys: int) -> dict:
    """The sidecar's gate record (stored under :data:`GATE_KEY`) for a calibrated ``margin`` (+inf kept as "inf")."""
    return {"margin": margin if math.isfinite(margin) else str(margin), "rule": GATE_RULE,
            "calibrated_on": calibrated_on, "n_decoys": n_decoys}


def stored_margin(sidecar: dict) -> float | None:
    """The calibrated margin in a weights' JSON sidecar, None where it has no gate record."""
    record = sidecar.get(GATE_KEY)
    return float(record["margin"]) if record else None


def decide(pred_dockq_refined: float | None, pred_dockq_input: float | None, margin: float) -> GateDecision:
    """Gate one decoy: keep the refined structure only when the predicted gain is > ``margin``
    (``math.inf`` = always fall back, ``-math.inf`` = keep wherever both estimates exist)."""
    refined = math.nan if pred_dockq_refined is None else float(pred_dockq_refined)
    original = math.nan if pred_dockq_input is None else float(pred_dockq_input)
    gain = refined - original
    return GateDecision(keeps_refinement(gain, margin), gain, refined, original)
