"""Refinement and quality assessment: one EGR forward pass per graph, batched (``egr refine``).

Outputs per decoy ``<id>``: ``<id>_refined.pdb`` (the input's atoms, names, numbering and chain IDs at
the refined coordinates; B-factor = predicted LDDT-Cα × 100), ```<id>_plddt.csv`` and
``<id>_scores.json``. With the Cα model, each residue's atoms move rigidly with its CA.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import Batch

from egr import __version__
from egr.graph import GraphBundle
from egr.io import atomic_write_json, atomic_write_text
from egr.model import EGR
from egr.structure import Complex, write_pdb
from egr.weights import ModelInfo

INTERFACE_CUTOFF = 8.0  # Å, heavy-atom distance to another chain that makes a residue an interface residue


@dataclass(frozen=True)
class Refinement:
    """Model output for one decoy: refined coordinates (n_atoms, 3) Å and pLDDT (n_residues,) in [0, 1]
    (NaN for residues without a graph node)."""

    coords: np.ndarray
    plddt: np.ndarray
    seconds: float


def refine_bundles(bundles: list[GraphBundle], model: EGR, device: str | torch.device = "cpu",
                   batch_size: int = 8) -> list[Refinement]:
    """Run EGR over ``bundles`` in batches of ``batch_size`` graphs; results in input order."""
    kinds = {b.kind for b in bundles}
    expected = "ca" if model.config.node_in == 28 else "all_atom"
    if kinds - {expected}:
        raise ValueError(f"the model expects {expected} graphs, got {sorted(kinds)}")
    results: list[Refinement] = []
    for start in range(0, len(bundles), batch_size):
        chunk = bundles[start:start + batch_size]
        began = time.perf_counter()
        batch = Batch.from_data_list([b.graph for b in chunk]).to(device)
        with torch.inference_mode():
            pos, qa = model(batch.x, batch.pos, batch.edge_index, batch.edge_attr, batch.batch)
        pos, qa = pos.double().cpu().numpy(), qa.double().cpu().numpy()
        seconds = (time.perf_counter() - began) / len(chunk)
        ptr = batch.ptr.cpu().numpy()
        for i, bundle in enumerate(chunk):
            nodes = slice(ptr[i], ptr[i + 1])
            results.append(_to_refinement(bundle, pos[nodes], qa[nodes], seconds))
    return results


def _to_refinement(bundle: GraphBundle, pos: np.ndarray, qa: np.ndarray, seconds: float) -> Refinement:
    c = bundle.complex
    qa_node = bundle.graph.qa_node.numpy()
    plddt = np.where(qa_node >= 0, qa[np.clip(qa_node, 0, None)], np.nan)
    if bundle.kind == "all_atom":
        return Refinement(pos, plddt, seconds)
    node_residue = bundle.graph.node_residue.numpy()
    shift = np.zeros((c.n_residues, 3))
    shift[node_residue] = pos - bundle.graph.pos.double().numpy()
    return Refinement(c.coords + shift[c.residue_index], plddt, seconds)


def interface_residues(c: Complex, cutoff: float = INTERFACE_CUTOFF) -> np.ndarray:
    """(n_residues,) bool: the residue has a heavy atom within ``cutoff`` Å of another chain's heavy atom."""
    pairs = cKDTree(c.coords).query_pairs(cutoff, output_type="ndarray")
    inter = pairs[c.chain_index[pairs[:, 0]] != c.chain_index[pairs[:, 1]]]
    flags = np.zeros(c.n_residues, dtype=bool)
    flags[c.residue_index[inter.ravel()]] = True
    return flags


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 4) if len(values) else None


def plddt_table(c: Complex, plddt: np.ndarray, interface: np.ndarray) -> str:
    """CSV text: chain, residue number, insertion code, residue name, predicted LDDT-Cα (empty if none),
    interface (1 for a residue within 8 Å of another chain)."""
    starts = c.residue_starts
    values = np.where(np.isfinite(plddt), np.char.mod("%.4f", np.nan_to_num(plddt)), "")
    rows = zip(c.chain_ids[starts], c.res_seq[starts], c.ins_codes[starts], c.res_names[starts], values,
               interface.astype(int))
    return "chain,resseq,icode,resname,plddt,interface\n" + "".join(
        f"{a},{b},{i},{r},{v},{f}\n" for a, b, i, r, v, f in rows)


def write_outputs(bundle: GraphBundle, refinement: Refinement, outdir: Path, model_info: ModelInfo,
                  device: str, record: dict | None = None) -> dict:
    """Write the three per-decoy outputs under ``outdir/<id>/`` (atomically, scores last) and return the scores."""
    c = bundle.complex
    folder = Path(outdir) / bundle.decoy_id
    atom_b = np.nan_to_num(refinement.plddt[c.residue_index], nan=0.0) * 100.0
    interface = interface_residues(c)
    remarks = [f"refined by egr {__version__}; B-factor = predicted LDDT-Ca x 100"]
    if not model_info.trained:
        remarks.append("UNTRAINED near-identity weights: coordinates barely move, pLDDT is not informative")
    write_pdb(c.with_coords(refinement.coords), folder / f"{bundle.decoy_id}_refined.pdb", atom_b, remarks)
    atomic_write_text(folder / f"{bundle.decoy_id}_plddt.csv", plddt_table(c, refinement.plddt, interface))
    displacement = np.linalg.norm(refinement.coords - c.coords, axis=1)
    backends = np.asarray(bundle.surface_backend)
    chains = c.chain_names
    chain_backend = {ch: sorted(set(backends[c.chain_ids == ch].tolist())) for ch in chains}
    record = dict(record or {})
    seconds = {**record.pop("seconds", {}), "refine": round(refinement.seconds, 4)}
    scores = {
        "id": bundle.decoy_id,
        "status": "ok",
        "reason": "",
        **record,
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
        "device": str(device),
        "egr_version": __version__,
        "seconds": seconds,
    }
    atomic_write_json(folder / f"{bundle.decoy_id}_scores.json", scores)
    return scores
