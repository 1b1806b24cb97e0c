"""The never-worse gate: keep a refined decoy only where EGR's own docking-quality estimate predicts a gain.

EGR's docking-quality head (:meth:`egr.model.EGR.docking_logits`) scores the interface crop of the
input and of the refined structure with the same network. The predicted gain is
``pred_dockq(refined) − pred_dockq(input)``; the refined coordinates are kept when it exceeds a margin
calibrated on the validation split (stored in the weights' JSON sidecar under ``"gate"``) and the
refined structure keeps the input's chemistry (:func:`egr.refine.physical_problems`). Otherwise the
input coordinates are written, with the per-residue pLDDT of the network's input pass. Both estimates
come from one head on one scale, so their difference is meaningful even where the absolute value is
off by a constant. A structure without two chains has no docking estimate, and the gate keeps its input.
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


def decide(pred_dockq_refined: float | None, pred_dockq_input: float | None, margin: float) -> GateDecision:
    """Gate one decoy: keep the refined structure only when the predicted gain is > ``margin``
    (``math.inf`` = always fall back, ``-math.inf`` = keep wherever both estimates exist)."""
    refined = math.nan if pred_dockq_refined is None else float(pred_dockq_refined)
    original = math.nan if pred_dockq_input is None else float(pred_dockq_input)
    gain = refined - original
    return GateDecision(bool(math.isfinite(gain) and gain > margin), gain, refined, original)
