"""EGR's docking-quality estimate on real decoys: the interface crop, and the same pred_dockq for the same pose
(rigid moves, chain order, other programs' file conventions)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from egr.graph import batch_docking, docking_input
from egr.interface import MIN_POOL_ATOMS, POOL_RADIUS, interface_crop
from egr.refine import predict_docking
from egr.structure import Complex, read_decoy
from egr.surface import compute_surface
from egr.weights import load_model

DECOYS = Path(__file__).parent / "data" / "decoys"
ATTRACT = DECOYS / "kq_1kq1_pdb1_1_ATTRACT.pdb.gz"  # blank elements, H, odd occupancies, renumbered
HADDOCK = DECOYS / "1AK4_ti5-itw_212w.pdb.gz"  # REMARK header, H with blank element column


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return load_model()[0]


def pred_dockq(model, path: Path) -> float:
    """pred_dockq of a decoy file through ingest and the surface step, as `egr run` computes it."""
    c, _ = read_decoy(path)
    surface = compute_surface(c.coords, c.elements, c.chain_ids)
    return predict_docking(model, [c], [surface.proximity])[0].pred_dockq


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_crop_pools_the_interface_and_ignores_pose_frame_and_chain_order() -> None:
    c, _ = read_decoy(HADDOCK)
    crop = interface_crop(c)
    assert crop.pairs.tolist() == [[0, 1]]
    # every pooled atom is in the crop and near the partner (or one of the nearest MIN_POOL_ATOMS)
    rows = crop.atoms[crop.pool_node]
    other = [c.coords[c.chain_index != k] for k in range(2)]
    d = np.array([np.min(np.linalg.norm(other[c.chain_index[r]] - c.coords[r], axis=1)) for r in rows[:50]])
    assert (d < POOL_RADIUS).all() or len(rows) == 2 * MIN_POOL_ATOMS
    assert (c.atom_names[crop.atoms] != "OXT").all()

    moved = c.with_coords(c.coords @ rotation(1).T + np.array([30.0, -12.0, 5.0]))
    again = interface_crop(moved)
    np.testing.assert_array_equal(again.atoms, crop.atoms)
    np.testing.assert_array_equal(again.pool_node, crop.pool_node)
    np.testing.assert_allclose(again.physics, crop.physics)

    swapped = swap_chains(c)
    crop_swapped = interface_crop(swapped)
    assert len(crop_swapped.atoms) == len(crop.atoms)
    np.testing.assert_allclose(crop_swapped.physics, crop.physics)


def swap_chains(c: Complex) -> Complex:
    """The same complex with its second chain listed first."""
    order = np.concatenate([np.flatnonzero(c.chain_index == 1), np.flatnonzero(c.chain_index == 0)])
    fields = {name: getattr(c, name)[order] for name in c.__dataclass_fields__}
    fields["chain_index"] = 1 - fields["chain_index"]
    _, fields["residue_index"] = np.unique(fields["residue_index"] + np.where(fields["chain_index"] == 0, -10 ** 6, 0),
                                           return_inverse=True)
    return Complex(**fields)


def _atom_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]


def test_same_pose_same_estimate_rigid_move_and_chain_order(model, tmp_path: Path) -> None:
    text = gzip.decompress(HADDOCK.read_bytes()).decode()
    lines = _atom_lines(text)
    rot, shift = rotation(7), np.array([55.0, -20.0, 8.5])
    moved = []
    for line in lines:
        xyz = np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])]) @ rot.T + shift
        moved.append(f"{line[:30]}{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{line[54:]}")
    (tmp_path / "moved.pdb").write_text("\n".join(moved) + "\nEND\n")
    chains = [line[21] for line in lines]
    first, second = chains[0], next(ch for ch in chains if ch != chains[0])
    reordered = [line for line in lines if line[21] == second] + [line for line in lines if line[21] == first]
    (tmp_path / "reordered.pdb").write_text("\n".join(reordered) + "\nEND\n")

    reference = pred_dockq(model, HADDOCK)
    assert 0.0 <= reference <= 1.0
    assert pred_dockq(model, tmp_path / "moved.pdb") == pytest.approx(reference, abs=1e-3)
    assert pred_dockq(model, tmp_path / "reordered.pdb") == pytest.approx(reference, abs=1e-3)


def rewrite_conventions(text: str, seed: int) -> str:
    """Another program's way of writing the same pose: atoms of each residue in reverse order, hydrogens
    dropped, residues renumbered from 501 with chain IDs X/Y, random B-factors and occupancies, element
    columns filled in, and every OXT dropped."""
    rng = np.random.default_rng(seed)
    residues: dict[tuple[str, str], list[str]] = {}
    for line in _atom_lines(text):
        name = line[12:16].strip()
        if name.startswith("H") or name == "OXT" or line[76:78].strip() == "H":
            continue
        residues.setdefault((line[21], line[22:27]), []).append(line)
    chain_names = {ch: new for ch, new in zip(dict.fromkeys(k[0] for k in residues), "XYZ")}
    out, counter = [], {}
    for (chain, _), atoms in residues.items():
        counter[chain] = counter.get(chain, 500) + 1
        for line in reversed(atoms):
            name = line[12:16].strip()
            occupancy, bfactor = rng.uniform(0.3, 1.0), rng.uniform(5, 90)
            out.append(f"ATOM  {len(out) + 1:5d} {line[12:16]} {line[17:20]} {chain_names[chain]}"
                       f"{counter[chain]:4d}    {line[30:54]}{occupancy:6.2f}{bfactor:6.2f}          {name[0]:>2}")
    return "\n".join(out) + "\nEND\n"


@pytest.mark.parametrize("decoy", [ATTRACT, HADDOCK], ids=["attract", "haddock"])
def test_no_method_fingerprints(model, decoy: Path, tmp_path: Path) -> None:
    text = gzip.decompress(decoy.read_bytes()).decode()
    rewritten = tmp_path / "rewritten.pdb"
    rewritten.write_text(rewrite_conventions(text, seed=3))
    c_orig, _ = read_decoy(decoy)
    c_new, _ = read_decoy(rewritten)
    assert list(c_new.res_names[c_new.residue_starts]) == list(c_orig.res_names[c_orig.residue_starts])
    assert pred_dockq(model, rewritten) == pytest.approx(pred_dockq(model, decoy), abs=0.01)


def test_inference_reads_the_full_graph_input_pass_as_training_reads_the_crop(model) -> None:
    """Training runs the head's layers over the interface crop, inference reads the full-graph input pass at
    the same pooled atoms: on real decoys the two agree closely (MODEL_CARD.md: mean |Δ| 0.003 over 109
    validation and test decoys)."""
    for decoy in (ATTRACT, HADDOCK):
        c, _ = read_decoy(decoy)
        proximity = compute_surface(c.coords, c.elements, c.chain_ids).proximity
        crop_batch = batch_docking([docking_input(c, proximity)])
        crop_batch.pop("owner")
        with torch.inference_mode():
            on_crop = torch.sigmoid(model.docking_logits(**crop_batch)).mean().item()
        on_full = predict_docking(model, [c], [proximity])[0].pred_dockq
        assert on_full == pytest.approx(on_crop, abs=0.02)


def test_refine_gives_the_scoring_estimate_and_recounts_physics_for_the_refinement(model) -> None:
    """pred_dockq from the passes of a refinement equals the estimate of scoring alone, a rigid move of the
    whole complex changes neither estimate, and the refined estimate reads the physics of the refined
    coordinates (a refinement that drives the ligand into its receptor scores lower)."""
    from dataclasses import replace

    from egr.graph import featurize
    from egr.refine import docking_estimates

    c, _ = read_decoy(HADDOCK)
    proximity = compute_surface(c.coords, c.elements, c.chain_ids).proximity

    def estimates(complex_: Complex):
        graph = featurize("t", complex_, proximity, np.full(complex_.n_atoms, "n/a")).graph
        with torch.inference_mode():
            passes = model.passes(graph.x, graph.pos, graph.edge_index, graph.edge_attr)
        return passes, docking_estimates(model, complex_, passes)

    passes, (before, after) = estimates(c)
    assert before.pred_dockq == pytest.approx(predict_docking(model, [c], [proximity])[0].pred_dockq, abs=1e-4)
    assert 0.0 <= after.pred_dockq <= 1.0
    _, (before_moved, after_moved) = estimates(c.with_coords(c.coords @ rotation(2).T + 40.0))
    assert before_moved.pred_dockq == pytest.approx(before.pred_dockq, abs=1e-3)
    assert after_moved.pred_dockq == pytest.approx(after.pred_dockq, abs=1e-3)
    ligand = c.chain_index == 1
    towards = c.coords[~ligand].mean(0) - c.coords[ligand].mean(0)
    pushed = torch.as_tensor(c.coords + np.where(ligand[:, None], 0.3 * towards, 0.0), dtype=passes.coords.dtype)
    _, into = docking_estimates(model, c, replace(passes, coords=pushed))
    assert into.pred_dockq < after.pred_dockq
