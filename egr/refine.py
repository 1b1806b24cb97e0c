"""Refinement and quality assessment: EGR's forward passes, one graph at a time (``egr refine``).

Per decoy, EGR's passes over the full graph (:meth:`egr.model.EGR.passes`) refine the coordinates and
predict per-residue LDDT-Cα (pLDDT) of the refined and of the input structure; the docking-quality head
(:meth:`egr.model.EGR.docking_from_features`) then reads their final features at the interface atoms
(:mod:`egr.interface`): ``pred_dockq`` from the input pass (the input decoy's predicted DockQ, the score
decoys are ranked by) and ``pred_dockq_refined`` from the refinement pass, with the physics inputs
recounted at the refined coordinates. A complex's predicted DockQ is the mean over its interfaces
(:mod:`egr.interface`), like DockQ's GlobalDockQ; with more than two chains each interface's value is
kept too. Single-chain inputs and Cα graphs get no docking estimate.

Outputs per decoy ``<id>``: ``<id>_refined.pdb`` (the input's atoms, names, numbering and chain IDs at
the refined coordinates; B-factor = predicted LDDT-Cα × 100), ``<id>_plddt.csv`` (per residue:
pLDDT and the interface flag, :func:`plddt_table`) and ``<id>_scores.json``. With the Cα model, each
residue's atoms move rigidly with its CA.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor
from torch_geometric.data import Batch, Data

from egr import __version__
from egr.gate import decide
from egr.graph import GRAPH_SCHEMAS, GraphBundle, LayoutError, featurize
from egr.io import atomic_write_json, atomic_write_text
from egr.layout import plddt_csv, refined_pdb, scores_json
from egr.interface import InterfaceCrop, crop_physics, interface_crop
from egr.model import EGR, Passes
from egr.physics import interface_physics
from egr.structure import Complex, write_pdb
from egr.weights import ModelInfo

INTERFACE_CUTOFF = 8.0  # Å, heavy-atom distance to another chain that makes a residue an interface residue
MAX_BOND_CHANGE = 0.1  # Å a covalent bond may change before a refinement counts as unphysical
CLASH = 2.2  # Å between heavy atoms that are not bonded


@dataclass(frozen=True)
class Refinement:
    """Model output for one decoy: refined coordinates (n_atoms, 3) Å and pLDDT (n_residues,) in [0, 1]
    (NaN for residues without a graph node)."""

    coords: np.ndarray
    plddt: np.ndarray
    seconds: float
    gate: dict | None = None  # the never-worse gate's decision (egr.gate.GateDecision) when it ran
    docking: "DockingEstimate | None" = None  # EGR's predicted DockQ of the input decoy
    docking_refined: "DockingEstimate | None" = None  # ... and of the refined structure


@dataclass(frozen=True)
class DockingEstimate:
    """EGR's predicted DockQ of one structure (0-1): the mean over interfaces, and each interface's value
    keyed ``"<chain>-<chain>"``. None where the structure has fewer than two chains."""

    pred_dockq: float | None
    interfaces: dict[str, float]


def predict_docking(model: EGR, complexes: list[Complex], proximities: list[np.ndarray],
                    device: str | torch.device = "cpu") -> list[DockingEstimate]:
    """Docking-quality estimates of ``complexes`` (each with its per-atom surface proximity): the input pass
    over each one's full all-atom graph, the same estimate as ``pred_dockq`` of :func:`refine_bundles`."""
    estimates = []
    for c, proximity in zip(complexes, proximities):
        if not _has_interface(c):
            estimates.append(DockingEstimate(None, {}))
            continue
        graph = featurize("score", c, np.asarray(proximity, dtype=np.float64), np.full(c.n_atoms, "n/a")).graph.to(device)
        crop = interface_crop(c)
        with torch.inference_mode():
            logits = model.docking_logits(graph.x, graph.pos, graph.edge_index, graph.edge_attr, None,
                                          *_pooling(crop, crop.physics, device))
        estimates.append(_named(logits, crop, c.chain_names))
    return estimates


def docking_estimates(model: EGR, complex_: Complex, passes: Passes, device: str | torch.device = "cpu"
                      ) -> tuple[DockingEstimate, DockingEstimate]:
    """Predicted DockQ of ``complex_`` and of its refinement, from :meth:`EGR.passes` over its full graph: the
    input pass's final features for the input, the refinement pass's for the refined coordinates (with the
    physics inputs recounted there)."""
    if not _has_interface(complex_):
        return DockingEstimate(None, {}), DockingEstimate(None, {})
    crop = interface_crop(complex_)
    refined = complex_.with_coords(passes.coords.double().cpu().numpy())
    with torch.inference_mode():
        before = model.docking_from_features(passes.features_input, *_pooling(crop, crop.physics, device))
        after = model.docking_from_features(passes.features, *_pooling(crop, crop_physics(refined, crop.pairs),
                                                                        device))
    return _named(before, crop, complex_.chain_names), _named(after, crop, complex_.chain_names)


def _has_interface(c: Complex) -> bool:
    return bool(c.n_atoms) and int(c.chain_index.max()) >= 1


def _pooling(crop: InterfaceCrop, physics: np.ndarray, device: str | torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The docking head's pooling arguments on the full graph (nodes = the complex's atoms)."""
    return (torch.from_numpy(crop.pool_rows).to(device), torch.from_numpy(crop.pool_interface).to(device),
            torch.from_numpy(physics).to(device))


def _named(logits: Tensor, crop: InterfaceCrop, names: np.ndarray) -> DockingEstimate:
    """Per-interface sigmoid(logits) named ``"<chain>-<chain>"``, and their mean."""
    values = torch.sigmoid(logits).double().cpu().numpy()
    interfaces = {f"{names[a]}-{names[b]}": round(float(v), 4) for (a, b), v in zip(crop.pairs, values)}
    return DockingEstimate(round(float(values.mean()), 4), interfaces)


def refine_bundles(bundles: list[GraphBundle], model: EGR, device: str | torch.device = "cpu",
                   batch_size: int = 8, gate_margin: float | None = None) -> list[Refinement]:
    """Run EGR over ``bundles``; results in input order. ``gate_margin`` (from the weights,
    :attr:`ModelInfo.gate_margin`) switches the never-worse gate on.

    Graphs are collated and moved to ``device`` ``batch_size`` at a time, but each decoy's passes run on
    its own graph, so :attr:`Refinement.seconds` is that decoy's own time, not an even share of a batch's
    (the collation and copy are in no decoy's time). On CPU this is also faster than one batched pass,
    which pads every graph to the batch's largest in the attention's dense layout (figures:
    benchmarks/README.md, "Per-decoy passes")."""
    for kind in sorted({b.kind for b in bundles}):  # a model without a schema checks the widths itself
        layout = GRAPH_SCHEMAS[kind]
        reason = model.schema.refusal(layout.node_in, layout.edge_in) if model.schema is not None else ""
        if reason:
            raise LayoutError(f"the model cannot read {kind} graphs: {reason}")
    results: list[Refinement] = []
    for start in range(0, len(bundles), batch_size):
        chunk = bundles[start:start + batch_size]
        on_device = Batch.from_data_list([b.graph for b in chunk]).to(device)
        results += [_refine_one(bundle, on_device.get_example(i), model, device, gate_margin)
                    for i, bundle in enumerate(chunk)]
    return results


def _refine_one(bundle: GraphBundle, graph: Data, model: EGR, device: str | torch.device,
                gate_margin: float | None) -> Refinement:
    """One decoy's passes on its graph (already on ``device``): refinement and the input pass, whose final
    features give the docking estimates of the refined and the input structure; ``seconds`` = their wall
    time, results copied back to the host included (which also waits for an asynchronous device)."""
    began = time.perf_counter()
    with torch.inference_mode():
        # the input pass gives pred_dockq, and the pLDDT written where the gate falls back to the input
        passes = model.passes(graph.x, graph.pos, graph.edge_index, graph.edge_attr)
    refinement = _to_refinement(bundle, passes.coords.double().cpu().numpy(), passes.qa.double().cpu().numpy(), 0.0)
    if bundle.kind == "all_atom":
        before, after = docking_estimates(model, bundle.complex, passes, device)
    else:
        before = after = DockingEstimate(None, {})
    refinement = replace(refinement, seconds=time.perf_counter() - began, docking=before, docking_refined=after)
    if gate_margin is None:
        return refinement
    qa_input = passes.qa_input.double().cpu().numpy()
    refinement = _gated(bundle, refinement, qa_input, gate_margin)
    return _physical_or_input(bundle, refinement, qa_input)


def physical_problems(bundle: GraphBundle, coords: np.ndarray) -> str:
    """'' when ``coords`` keep the input's chemistry, else a one-line reason: a covalent bond (graph edges
    with the covalent flag) changed by more than 0.1 Å, or a new clash (< 2.2 Å) between atoms that
    were more than 2.5 Å apart in the input (so bonded and angle neighbours are not counted)."""
    if bundle.kind != "all_atom":
        return ""
    src, dst = bundle.graph.edge_index.numpy()
    before = np.linalg.norm(bundle.complex.coords[src] - bundle.complex.coords[dst], axis=1)
    after = np.linalg.norm(coords[src] - coords[dst], axis=1)
    covalent = bundle.schema.edge_feature(bundle.graph.edge_attr, "covalent").numpy() > 0.5
    change = float(np.abs(after - before)[covalent].max()) if covalent.any() else 0.0
    new_clashes = int(np.sum(~covalent & (before > 2.5) & (after < CLASH)))
    if change > MAX_BOND_CHANGE:
        return f"a covalent bond changed by {change:.2f} Å (> {MAX_BOND_CHANGE} Å)"
    if new_clashes:
        return f"{new_clashes} new heavy-atom contact(s) closer than {CLASH} Å"
    return ""


def _physical_or_input(bundle: GraphBundle, refinement: Refinement, qa_input: np.ndarray) -> Refinement:
    """The never-worse gate's second check: refined coordinates that break the input's chemistry are
    replaced by the input's (with the input pass's pLDDT)."""
    if not refinement.gate["keep_refined"]:
        return refinement
    problem = physical_problems(bundle, refinement.coords)
    if not problem:
        return refinement
    gate = {**refinement.gate, "keep_refined": False, "physical_check": problem}
    return replace(refinement, coords=bundle.complex.coords, plddt=_residue_plddt(bundle, qa_input), gate=gate)


def _residue_plddt(bundle: GraphBundle, qa: np.ndarray) -> np.ndarray:
    qa_node = bundle.graph.qa_node.numpy()
    return np.where(qa_node >= 0, qa[np.clip(qa_node, 0, None)], np.nan)


def _to_refinement(bundle: GraphBundle, pos: np.ndarray, qa: np.ndarray, seconds: float) -> Refinement:
    c = bundle.complex
    plddt = _residue_plddt(bundle, qa)
    if bundle.kind == "all_atom":
        return Refinement(pos, plddt, seconds)
    node_residue = bundle.graph.node_residue.numpy()
    shift = np.zeros((c.n_residues, 3))
    shift[node_residue] = pos - bundle.graph.pos.double().numpy()
    return Refinement(c.coords + shift[c.residue_index], plddt, seconds)


def _gated(bundle: GraphBundle, refinement: Refinement, qa_input: np.ndarray, margin: float) -> Refinement:
    decision = decide(refinement.docking_refined.pred_dockq, refinement.docking.pred_dockq, margin)
    record = {**asdict(decision), "margin": margin}
    if decision.keep_refined:
        return replace(refinement, gate=record)
    return replace(refinement, coords=bundle.complex.coords, plddt=_residue_plddt(bundle, qa_input), gate=record)


def interface_residues(c: Complex, cutoff: float = INTERFACE_CUTOFF) -> np.ndarray:
    """(n_residues,) bool: the residue has a heavy atom within ``cutoff`` Å (distance ≤ cutoff) of another
    chain's heavy atom (``c`` holds the heavy atoms of amino-acid residues only: ingest drops hydrogens,
    waters and ligands)."""
    pairs = cKDTree(c.coords).query_pairs(cutoff, output_type="ndarray")
    inter = pairs[c.chain_index[pairs[:, 0]] != c.chain_index[pairs[:, 1]]]
    flags = np.zeros(c.n_residues, dtype=bool)
    flags[c.residue_index[inter.ravel()]] = True
    return flags


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 4) if len(values) else None


def plddt_table(c: Complex, plddt: np.ndarray, interface: np.ndarray) -> str:
    """Text of ``<id>_plddt.csv``, one row per residue of ``c`` in file order: ``chain``, ``resseq``,
    ``icode`` (insertion code, empty when none), ``resname``, ``plddt`` (predicted LDDT-Cα in [0, 1], 4
    decimals; empty for a residue without a graph node) and ``interface``: 1 where ``interface`` (from
    :func:`interface_residues` of the cleaned input decoy, as :func:`write_outputs` passes it: a heavy atom
    of the residue within 8 Å, inclusive, of a heavy atom of another chain) is True, else 0."""
    starts = c.residue_starts
    values = np.where(np.isfinite(plddt), np.char.mod("%.4f", np.nan_to_num(plddt)), "")
    rows = zip(c.chain_ids[starts], c.res_seq[starts], c.ins_codes[starts], c.res_names[starts], values,
               interface.astype(int))
    return "chain,resseq,icode,resname,plddt,interface\n" + "".join(
        f"{a},{b},{i},{r},{v},{f}\n" for a, b, i, r, v, f in rows)


def write_outputs(bundle: GraphBundle, refinement: Refinement, outdir: Path, model_info: ModelInfo,
                  device: str, record: dict | None = None) -> dict:
    """Write the three per-decoy outputs under ``outdir/<id>/`` (atomically, scores last) and return the scores.
    Interface residues (the ``interface`` column of ``<id>_plddt.csv``, ``interface_plddt``,
    ``n_interface_residues``) are those of the cleaned input decoy, not of the refined structure, so they do
    not change with the gate's decision."""
    c = bundle.complex
    atom_b = np.nan_to_num(refinement.plddt[c.residue_index], nan=0.0) * 100.0
    interface = interface_residues(c)
    remarks = [f"refined by egr {__version__}; B-factor = predicted LDDT-Ca x 100"]
    if not model_info.trained:
        remarks.append("UNTRAINED near-identity weights: coordinates barely move, pLDDT is not informative")
    if refinement.gate is not None and not refinement.gate["keep_refined"]:
        why = refinement.gate.get("physical_check") or "no predicted gain"
        remarks.append(f"never-worse gate: {why}; input coordinates kept")
    write_pdb(c.with_coords(refinement.coords), refined_pdb(outdir, bundle.decoy_id), atom_b, remarks)
    atomic_write_text(plddt_csv(outdir, bundle.decoy_id), plddt_table(c, refinement.plddt, interface))
    displacement = np.linalg.norm(refinement.coords - c.coords, axis=1)
    backends = np.asarray(bundle.surface_backend)
    chains = c.chain_names
    chain_backend = {ch: sorted(set(backends[c.chain_ids == ch].tolist())) for ch in chains}
    record = dict(record or {})
    seconds = {**record.pop("seconds", {}), "refine": round(refinement.seconds, 4)}
    physics = interface_physics(c)  # the contacts − 10 × clashes reference ranker, of the input decoy
    scores = {
        "id": bundle.decoy_id,
        "status": "ok",
        "reason": "",
        **record,
        "pred_dockq": refinement.docking.pred_dockq if refinement.docking else None,
        "pred_dockq_interfaces": refinement.docking.interfaces if refinement.docking else {},
        "pred_dockq_refined": refinement.docking_refined.pred_dockq if refinement.docking_refined else None,
        "contacts_clashes": int(physics.contacts_clashes),
        "inter_chain_contacts": physics.total_contacts,
        "inter_chain_clashes": physics.total_clashes,
        "mean_plddt": _mean_or_none(refinement.plddt),
        "interface_plddt": _mean_or_none(refinement.plddt[interface]),
        "n_interface_residues": int(interface.sum()),
        "n_atoms": c.n_atoms,
        "n_residues": c.n_residues,
        "chains": chains,
        "graph": bundle.kind,
        "surface_backend": {ch: "+".join(b) for ch, b in chain_backend.items()},
        "rmsd_to_input": round(float(np.sqrt(np.mean(displacement ** 2))), 4),
        "max_displacement": round(float(displacement.max()), 4),
        "model": asdict(model_info),
        "gate": refinement.gate,
        "device": str(device),
        "egr_version": __version__,
        "seconds": seconds,
    }
    atomic_write_json(scores_json(outdir, bundle.decoy_id), scores)
    return scores
