"""Refinement with the shipped weights on real decoys: physically sane output, the never-worse gate, each
decoy's own timing and the interface column of ``<id>_plddt.csv``."""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from torch_geometric.data import Batch

from egr.graph import ALL_ATOM_SCHEMA, LayoutError, covalent_flags, featurize, knn_edges
from egr.refine import physical_problems, predict_docking, refine_bundles, write_outputs
from egr.structure import read_decoy
from egr.surface import compute_surface
from egr.weights import load_model

CLASH = 2.2  # Å between heavy atoms that are neither bonded nor bonded to a common atom (1-2 and 1-3 pairs
# such as O(i)–N(i+1), 2.25 Å in a peptide, are chemistry, not clashes)


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def bundles(decoy_paths):
    out = []
    for path in decoy_paths[:3]:
        c, _ = read_decoy(path)
        surface = compute_surface(c.coords, c.elements, c.chain_ids, backend="builtin")
        out.append(featurize(path.name, c, surface.proximity, surface.backend))
    return out


def clashes(coords: np.ndarray, excluded: sparse.csr_matrix) -> int:
    pairs = cKDTree(coords).query_pairs(CLASH, output_type="ndarray")
    return int(np.sum(np.asarray(excluded[pairs[:, 0], pairs[:, 1]]).ravel() == 0))


def test_refined_structures_stay_physical(model, bundles):
    """What egr writes keeps the input's chemistry: no new clashes (1-2/1-3 neighbours excluded) and
    bonds within 0.1 Å of the input's, even when the gate is told to keep every refinement."""
    net, info = model
    for margin in (info.gate_margin, -math.inf):
        for bundle, refined in zip(bundles, refine_bundles(bundles, net, gate_margin=margin)):
            c = bundle.complex
            edges = knn_edges(c.coords)
            src, dst = edges[:, covalent_flags(edges, c.coords, c.elements)]
            bonds = sparse.coo_matrix((np.ones(len(src)), (src, dst)), shape=(c.n_atoms,) * 2).tocsr()
            bonds = ((bonds + bonds.T) > 0).astype(np.int32)
            excluded = ((bonds + bonds @ bonds) > 0).tocsr()
            assert clashes(refined.coords, excluded) <= clashes(c.coords, excluded), bundle.decoy_id
            before = np.linalg.norm(c.coords[src] - c.coords[dst], axis=1)
            after = np.linalg.norm(refined.coords[src] - refined.coords[dst], axis=1)
            assert np.abs(after - before).max() <= 0.1, (bundle.decoy_id, refined.gate)
            assert np.all((refined.plddt >= 0) & (refined.plddt <= 1))


def test_physical_check_catches_a_stretched_bond_and_a_clash(bundles):
    bundle = bundles[0]
    c = bundle.complex
    assert physical_problems(bundle, c.coords) == ""
    stretched = c.coords.copy()
    stretched[1] += (c.coords[1] - c.coords[0]) / np.linalg.norm(c.coords[1] - c.coords[0]) * 0.3  # N–CA + 0.3 Å
    assert "covalent bond changed by" in physical_problems(bundle, stretched)
    src, dst = bundle.graph.edge_index.numpy()
    far = np.flatnonzero((np.linalg.norm(c.coords[src] - c.coords[dst], axis=1) > 3.5)
                         & (bundle.schema.edge_feature(bundle.graph.edge_attr, "covalent").numpy() == 0))[0]
    squeezed = c.coords.copy()
    squeezed[src[far]] = c.coords[dst[far]] + 1.5 * (c.coords[src[far]] - c.coords[dst[far]]) / np.linalg.norm(
        c.coords[src[far]] - c.coords[dst[far]])
    assert "new heavy-atom contact" in physical_problems(bundle, squeezed) or "covalent" in physical_problems(
        bundle, squeezed)


def test_gate_falls_back_to_the_input_or_keeps_the_refinement(model, bundles):
    net, _ = model
    never = refine_bundles(bundles[:1], net, gate_margin=math.inf)[0]
    assert never.gate["keep_refined"] is False
    np.testing.assert_array_equal(never.coords, bundles[0].complex.coords)
    always = refine_bundles(bundles[:1], net, gate_margin=-math.inf)[0]
    ungated = refine_bundles(bundles[:1], net)[0]
    if always.gate["keep_refined"]:
        np.testing.assert_allclose(always.coords, ungated.coords)
    else:  # predicted gain accepted, but the refinement broke the input's chemistry
        assert always.gate["physical_check"] == physical_problems(bundles[0], ungated.coords) != ""
        np.testing.assert_array_equal(always.coords, bundles[0].complex.coords)
    assert always.gate["predicted_gain"] == pytest.approx(
        always.gate["pred_dockq_refined"] - always.gate["pred_dockq_input"])
    assert always.docking.pred_dockq == always.gate["pred_dockq_input"]


def test_shipped_weights_are_trained_and_gated(model):
    _, info = model
    assert info.trained and info.gate_margin is not None and len(info.sha256) == 64


def test_the_shipped_model_refuses_a_graph_of_another_layout(model, decoy_paths):
    """The shipped (all-atom) weights refuse a Cα graph with a one-line reason naming what differs."""
    net, _ = model
    assert net.schema == ALL_ATOM_SCHEMA
    c, _ = read_decoy(decoy_paths[2])
    surface = compute_surface(c.coords, c.elements, c.chain_ids, backend="builtin")
    ca_bundle = featurize("ca", c, surface.proximity, surface.backend, ca=True)
    with pytest.raises(LayoutError) as refused:
        refine_bundles([ca_bundle], net)
    message = str(refused.value)
    assert "\n" not in message and "cannot read ca graphs" in message
    assert ("weights expect node features atom_name(38)+surface(1) = 39, graph has "
            "residue(21)+surface(1)+dihedrals(6) = 28") in message
    with pytest.raises(LayoutError, match="weights expect node features atom_name"):  # the model itself, too
        net(ca_bundle.graph.x, ca_bundle.graph.pos, ca_bundle.graph.edge_index, ca_bundle.graph.edge_attr)


def test_each_decoy_is_timed_alone_with_the_numbers_of_one_batched_pass(model, bundles):
    """Each decoy's passes run on its own graph: its seconds are its own (not the batch's time split evenly)
    and coordinates, pLDDT and predicted DockQ are those of one batched pass over all graphs."""
    net, _ = model
    began = time.perf_counter()
    refined = refine_bundles(bundles, net, batch_size=8)  # ungated: the coordinates are the model's
    wall = time.perf_counter() - began
    batch = Batch.from_data_list([b.graph for b in bundles])
    with torch.inference_mode():
        pos, qa = net(batch.x, batch.pos, batch.edge_index, batch.edge_attr, batch.batch)
    proximity = [b.schema.node_feature(b.graph.x, "surface").double().numpy() for b in bundles]
    docking = predict_docking(net, [b.complex for b in bundles], proximity)
    for i, (bundle, refinement) in enumerate(zip(bundles, refined)):
        rows = slice(int(batch.ptr[i]), int(batch.ptr[i + 1]))
        np.testing.assert_allclose(refinement.coords, pos[rows].double().numpy(), atol=1e-5)
        qa_node = bundle.graph.qa_node.numpy()
        plddt = np.where(qa_node >= 0, qa[rows].double().numpy()[np.clip(qa_node, 0, None)], np.nan)
        np.testing.assert_allclose(refinement.plddt, plddt, atol=1e-5)
        # predicted DockQ is stored at 4 decimals: float noise may move the last one
        assert refinement.docking.pred_dockq == pytest.approx(docking[i].pred_dockq, abs=1.01e-4)
    seconds = [r.seconds for r in refined]
    assert len(set(seconds)) == len(seconds) and 0 < sum(seconds) <= wall


def test_plddt_csv_interface_column_is_the_input_decoys_8_angstrom_contact(model, bundles, tmp_path: Path):
    """interface = 1 where a heavy atom of the residue is within 8 Å (inclusive) of another chain's heavy atom,
    in the cleaned input decoy: brute force over all atom pairs; moving the refined chains apart changes nothing."""
    net, info = model
    bundle = bundles[0]
    c = bundle.complex
    distances = cdist(c.coords, c.coords)
    other_chain = c.chain_index[:, None] != c.chain_index[None, :]
    atom_flag = ((distances <= 8.0) & other_chain).any(axis=1)
    expected = np.bincount(c.residue_index, weights=atom_flag, minlength=c.n_residues) > 0
    assert 0 < expected.sum() < c.n_residues
    refinement = refine_bundles([bundle], net)[0]
    apart = c.coords + np.where(c.chain_index[:, None] == 0, 0.0, 100.0)  # refined chains 100 Å apart
    write_outputs(bundle, replace(refinement, coords=apart), tmp_path, info, "cpu")
    text = (tmp_path / bundle.decoy_id / f"{bundle.decoy_id}_plddt.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == c.n_residues
    assert [int(r["interface"]) for r in rows] == expected.astype(int).tolist()
