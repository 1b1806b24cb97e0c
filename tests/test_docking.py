"""EGR's docking-quality estimate on real decoys: the interface pooling, and the same pred_dockq for the same
pose (rigid moves, chain order, other programs' file conventions)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from egr.graph import docking_pool, featurize
from egr.interface import MIN_POOL_ATOMS, POOL_RADIUS, interface_pool
from egr.refine import predict_docking, refinement_docking
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


def test_pooling_reads_the_interface_and_ignores_pose_frame_and_chain_order() -> None:
    c, _ = read_decoy(HADDOCK)
    pool = interface_pool(c)
    assert pool.pairs.tolist() == [[0, 1]]
    # every pooled atom is near the partner (or one of the nearest MIN_POOL_ATOMS), and none is an OXT
    rows = pool.pool_node
    other = [c.coords[c.chain_index != k] for k in range(2)]
    d = np.array([np.min(np.linalg.norm(other[c.chain_index[r]] - c.coords[r], axis=1)) for r in rows[:50]])
    assert (d < POOL_RADIUS).all() or len(rows) == 2 * MIN_POOL_ATOMS
    assert (c.atom_names[rows] != "OXT").all()
    assert set(c.chain_index[rows]) == {0, 1}

    moved = c.with_coords(c.coords @ rotation(1).T + np.array([30.0, -12.0, 5.0]))
    again = interface_pool(moved)
    np.testing.assert_array_equal(again.pool_node, pool.pool_node)
    np.testing.assert_allclose(again.physics, pool.physics)

    swapped = swap_chains(c)
    pool_swapped = interface_pool(swapped)
    assert len(pool_swapped.pool_node) == len(pool.pool_node)
    np.testing.assert_allclose(pool_swapped.physics, pool.physics)


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


def test_a_refinement_is_scored_from_the_refinement_pass(model) -> None:
    """pred_dockq is the input pass's, exactly what scoring the structure alone gives; pred_dockq_refined is
    the refinement pass's, with the physics inputs of the refined coordinates on the input's pooling."""
    c, _ = read_decoy(HADDOCK)
    proximity = compute_surface(c.coords, c.elements, c.chain_ids).proximity
    g = featurize("x", c, proximity, np.full(c.n_atoms, "n/a")).graph
    with torch.inference_mode():
        passes = model.forward_with_input_pass(g.x, g.pos, g.edge_index, g.edge_attr)
    refined = passes.coords.double().numpy()
    before, after = refinement_docking(model, passes, c, refined)
    assert before.pred_dockq == pytest.approx(predict_docking(model, [c], [proximity])[0].pred_dockq, abs=1e-4)
    # the refinement moves atoms by hundredths of an Å: its estimate stays close to the input's
    assert abs(after.pred_dockq - before.pred_dockq) < 0.05
    pool = docking_pool(c)
    at_refined = pool.moved(c.with_coords(refined))
    with torch.inference_mode():
        pooled = model.pooled_logits(passes.features, at_refined.pool_node, at_refined.pool_interface,
                                     at_refined.physics)
    assert after.pred_dockq == pytest.approx(float(torch.sigmoid(pooled).mean()), abs=1e-4)

    assert docking_pool(c).moved(c.with_coords(c.coords @ rotation(2).T + 40.0)).physics.equal(pool.physics)
    ligand = c.chain_index == 1
    towards = c.coords[~ligand].mean(0) - c.coords[ligand].mean(0)
    pushed = c.coords + np.where(ligand[:, None], 0.3 * towards, 0.0)  # deep interpenetration
    pushed_pool = pool.moved(c.with_coords(pushed))
    assert pushed_pool.pool_node.equal(pool.pool_node)
    clashes_before, clashes_after = pool.physics[0, 1].item(), pushed_pool.physics[0, 1].item()
    assert clashes_after > clashes_before + 2  # log(1 + clashes): many times more clashes
