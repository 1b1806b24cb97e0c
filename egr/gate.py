"""The never-worse gate: keep a refined decoy only where EGR's own QA predicts that refinement helped.

The QA head is trained (:mod:`egr.train`) on two passes of the same network over the same input graph:

* the normal pass, which moves the coordinates; its QA learns the LDDT-Cα of the *refined* structure
  (the pLDDT written into ``<id>_refined.pdb``);
* an *input* pass with the coordinate updates switched off (so each layer's x' = α·x⁰ + (1 − α)·x stays
  at the input coordinates; :meth:`egr.model.EGR.forward_with_input_pass`); its QA learns the LDDT-Cα
  of the input.

At inference both passes run; the predicted gain is the mean over residues of
``pLDDT(refined) − pLDDT(input)``. The refined coordinates are kept when the gain exceeds a margin
calibrated on the validation split (stored in the weights' JSON sidecar under ``"gate"``); otherwise the
input coordinates are returned with the input pass's pLDDT. Both numbers come from one QA head on one
scale, so their difference is meaningful even where the absolute pLDDT is off by a constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


GATE_KEY = "gate"  # key of the gate record in the weights' JSON sidecar


@dataclass(frozen=True)
class GateDecision:
    """keep_refined: use the refined coordinates; predicted_gain: mean pLDDT(refined) − pLDDT(input)
    over residues with a QA node; the two means are also given (all in LDDT units, 0-1)."""

    keep_refined: bool
    predicted_gain: float
    plddt_refined: float
    plddt_input: float


def decide(qa_refined: np.ndarray, qa_input: np.ndarray, qa_node: np.ndarray, margin: float) -> GateDecision:
    """Gate one decoy.

    Args:
        qa_refined, qa_input: (n_nodes,) QA of the normal pass and of the input pass (``EGR.forward_with_input_pass``).
        qa_node: (n_residues,) node carrying each residue's QA (−1 where none), as in the graph.
        margin: keep the refined structure only when the predicted gain is > margin
            (``math.inf`` = always fall back, ``-math.inf`` = never).
    """
    nodes = np.asarray(qa_node)[np.asarray(qa_node) >= 0]
    refined = float(np.mean(np.asarray(qa_refined)[nodes])) if len(nodes) else math.nan
    original = float(np.mean(np.asarray(qa_input)[nodes])) if len(nodes) else math.nan
    gain = refined - original
    return GateDecision(bool(math.isfinite(gain) and gain > margin), gain, refined, original)
