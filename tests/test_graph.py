"""Featurization: k-NN topology, the 39/15 and 28/14 feature layouts, invariances, safe reload."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egr.chemistry import ATOM_VOCAB
from egr.graph import K_NEIGHBOURS, featurize, knn_edges, load_graph, save_graph
from egr.structure import read_decoy


@pytest.fixture(scope="module")
def complex_(small_decoy):
    return read_decoy(small_decoy)[0]


def _bundle(c, ca=False):
    rng = np.random.default_rng(0)
    return featurize("t", c, rng.random(c.n_atoms), np.full(c.n_atoms, "builtin"), ca=ca)


def random_rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_knn_matches_brute_force():
    pos = np.random.default_rng(1).normal(scale=10, size=(300, 3))
    edges = knn_edges(pos, k=K_NEIGHBOURS)
    assert edges.shape == (2, 300 * K_NEIGHBOURS)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    expected = np.sort(np.argsort(d, axis=1)[:, :K_NEIGHBOURS], axis=1)
    got = np.sort(edges[0].reshape(300, K_NEIGHBOURS), axis=1)
    assert np.array_equal(got, expected)
    assert np.array_equal(edges[1], np.repeat(np.arange(300), K_NEIGHBOURS))
    assert not np.any(edges[0] == edges[1])


def test_knn_with_fewer_nodes_than_k_and_duplicate_points():
    pos = np.zeros((5, 3))
    pos[1:] += np.arange(1, 5)[:, None]
    pos[4] = pos[3]
    edges = knn_edges(pos, k=20)
    assert edges.shape == (2, 5 * 4) and not np.any(edges[0] == edges[1])


def test_all_atom_feature_layout(complex_):
    g = _bundle(complex_).graph
    n = complex_.n_atoms
    assert g.x.shape == (n, 39) and g.edge_attr.shape == (n * K_NEIGHBOURS, 15)
    assert torch.all(g.x[:, :38].sum(1) == 1)
    ca_col = ATOM_VOCAB.index("CA")
    assert torch.equal(g.x[:, ca_col].bool(), torch.from_numpy(complex_.atom_names == "CA"))
    # every residue's N–CA bond shows up as a covalent, same-chain edge
    src, dst = g.edge_index.numpy()
    names = complex_.atom_names
    n_ca = (names[src] == "N") & (names[dst] == "CA") & (complex_.residue_index[src] == complex_.residue_index[dst])
    assert n_ca.sum() >= 0.95 * complex_.n_residues
    assert torch.all(g.edge_attr[torch.from_numpy(n_ca), 14] == 1)
    assert torch.all(g.edge_attr[torch.from_numpy(n_ca), 1] == 1)
    # interface edges exist and carry the different-chain flag
    cross = complex_.chain_index[src] != complex_.chain_index[dst]
    assert cross.any() and torch.all(g.edge_attr[torch.from_numpy(cross), 1] == 0)
    # covalent flag: 0.4 Å < d < r_i + r_j + 0.56 Å (C–C: 2.1 Å); unbound decoys may clash across chains
    d = np.linalg.norm(complex_.coords[src] - complex_.coords[dst], axis=1)
    carbon = (complex_.elements[src] == "C") & (complex_.elements[dst] == "C")
    flag = g.edge_attr[:, 14].numpy().astype(bool)
    assert np.array_equal(flag[carbon], (d[carbon] > 0.4) & (d[carbon] < 2.1))


def test_ca_feature_layout(complex_):
    bundle = _bundle(complex_, ca=True)
    g = bundle.graph
    n_ca = int(np.sum(complex_.atom_names == "CA"))
    assert g.x.shape == (n_ca, 28) and g.edge_attr.shape == (n_ca * K_NEIGHBOURS, 14)
    assert torch.all(g.x[:, :21].sum(1) == 1)
    sin_cos = g.x[:, 22:].reshape(-1, 2, 3)
    norms = sin_cos[:, 0] ** 2 + sin_cos[:, 1] ** 2  # sin² + cos² = 1 where defined, 0 at chain ends
    assert torch.all(((norms - 1).abs() < 1e-5) | (norms == 0))
    assert (norms > 0.5).float().mean() > 0.9


def test_edge_features_invariant_to_rigid_motion(complex_):
    rotated = complex_.with_coords(complex_.coords @ random_rotation(3).T + np.array([30.0, -12.0, 4.0]))
    a, b = _bundle(complex_).graph, _bundle(rotated).graph
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.allclose(a.edge_attr, b.edge_attr, atol=1e-4)
    a, b = _bundle(complex_, ca=True).graph, _bundle(rotated, ca=True).graph
    assert torch.allclose(a.edge_attr, b.edge_attr, atol=1e-4) and torch.allclose(a.x, b.x, atol=1e-5)


def test_graph_file_reloads_with_weights_only(tmp_path, complex_):
    bundle = _bundle(complex_)
    save_graph(bundle, tmp_path / "t_graph.pt")
    raw = torch.load(tmp_path / "t_graph.pt", weights_only=True)
    assert raw["format"] == "egr-graph/1"
    again = load_graph(tmp_path / "t_graph.pt")
    assert torch.equal(again.graph.edge_attr, bundle.graph.edge_attr)
    assert np.array_equal(again.complex.atom_names, complex_.atom_names)
    np.testing.assert_array_equal(again.complex.coords, complex_.coords)
