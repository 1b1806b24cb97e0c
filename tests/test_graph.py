"""Featurization: k-NN topology, the 39/15 and 28/14 feature layouts, invariances, safe reload."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import egr
from egr.chemistry import AMINO_ACIDS, ATOM_VOCAB
from egr.graph import (ALL_ATOM_SCHEMA, CA_SCHEMA, GRAPH_SCHEMAS, K_NEIGHBOURS, GraphSchema, LayoutError, featurize,
                       knn_edges, layout_of, load_graph, save_graph)
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
    bundle = _bundle(complex_)
    g, schema = bundle.graph, bundle.schema
    n = complex_.n_atoms
    assert schema == ALL_ATOM_SCHEMA and (schema.node_in, schema.edge_in) == (39, 15)
    assert g.x.shape == (n, 39) and g.edge_attr.shape == (n * K_NEIGHBOURS, 15)
    atom_name = schema.node_feature(g.x, "atom_name")
    assert atom_name.shape == (n, len(ATOM_VOCAB)) and torch.all(atom_name.sum(1) == 1)
    assert torch.equal(atom_name[:, ATOM_VOCAB.index("CA")].bool(), torch.from_numpy(complex_.atom_names == "CA"))
    assert torch.equal(schema.node_feature(g.x, "surface"), g.x[:, schema.node_slice("surface")].squeeze(1))
    covalent, same_chain = (schema.edge_feature(g.edge_attr, name) for name in ("covalent", "same_chain"))
    # every residue's N–CA bond shows up as a covalent, same-chain edge
    src, dst = g.edge_index.numpy()
    names = complex_.atom_names
    n_ca = (names[src] == "N") & (names[dst] == "CA") & (complex_.residue_index[src] == complex_.residue_index[dst])
    assert n_ca.sum() >= 0.95 * complex_.n_residues
    assert torch.all(covalent[torch.from_numpy(n_ca)] == 1)
    assert torch.all(same_chain[torch.from_numpy(n_ca)] == 1)
    # interface edges exist and carry the different-chain flag, and sin(i − j) is 0 there
    cross = complex_.chain_index[src] != complex_.chain_index[dst]
    assert cross.any() and torch.all(same_chain[torch.from_numpy(cross)] == 0)
    assert torch.all(schema.edge_feature(g.edge_attr, "sin_index")[torch.from_numpy(cross)] == 0)
    # covalent flag: 0.4 Å < d < r_i + r_j + 0.56 Å (C–C: 2.1 Å); unbound decoys may clash across chains
    d = np.linalg.norm(complex_.coords[src] - complex_.coords[dst], axis=1)
    carbon = (complex_.elements[src] == "C") & (complex_.elements[dst] == "C")
    flag = covalent.numpy().astype(bool)
    assert np.array_equal(flag[carbon], (d[carbon] > 0.4) & (d[carbon] < 2.1))


def test_ca_feature_layout(complex_):
    bundle = _bundle(complex_, ca=True)
    g = bundle.graph
    n_ca = int(np.sum(complex_.atom_names == "CA"))
    schema = bundle.schema
    assert schema == CA_SCHEMA and (schema.node_in, schema.edge_in) == (28, 14)
    assert g.x.shape == (n_ca, 28) and g.edge_attr.shape == (n_ca * K_NEIGHBOURS, 14)
    assert torch.all(schema.node_feature(g.x, "residue").sum(1) == 1)
    assert schema.node_feature(g.x, "residue").shape[1] == len(AMINO_ACIDS) + 1
    sin_cos = schema.node_feature(g.x, "dihedrals").reshape(-1, 2, 3)
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


def test_schemas_name_every_column_once_and_round_trip_through_json():
    for schema in GRAPH_SCHEMAS.values():
        assert GraphSchema.from_json(schema.to_json()) == schema
        assert layout_of(schema.node_in, schema.edge_in) == schema
        assert schema.refusal(schema.node_in, schema.edge_in) == ""
        for side, width in (("node", schema.node_in), ("edge", schema.edge_in)):
            parts = getattr(schema, side)
            columns = [c for name, _ in parts
                       for c in range(width)[getattr(schema, f"{side}_slice")(name)]]
            assert columns == list(range(width)) and len({name for name, _ in parts}) == len(parts)
    assert ALL_ATOM_SCHEMA.describe("node") == "atom_name(38)+surface(1) = 39"
    assert layout_of(39, 14) is None
    assert ALL_ATOM_SCHEMA.refusal(39, 14) == (
        "feature layout differs: weights expect edge features sin_index(1)+same_chain(1)+geometry(12)+covalent(1) "
        "= 15, graph has 14")
    with pytest.raises(KeyError, match="no all_atom node feature 'residue'"):
        ALL_ATOM_SCHEMA.node_slice("residue")
    with pytest.raises(LayoutError, match="28 columns"):
        ALL_ATOM_SCHEMA.node_feature(torch.zeros(3, 28), "surface")
    with pytest.raises(ValueError, match="not a feature schema"):
        GraphSchema.from_json({"kind": "ca", "node": [["residue"]]})


def test_no_bare_feature_columns_outside_the_layout_owner():
    """Feature columns are read by name (egr.graph's schemas) everywhere but in egr/graph.py itself."""
    bare = re.compile(r"(\bx|edge_attr)\[:, *-?\d|(node_in|edge_in) *[=!]= *\d|\[\s*[\"']gate[\"']\s*\]|> *margin\b")
    hits = []
    for path in sorted(Path(egr.__file__).parent.glob("*.py")):
        if path.name in ("graph.py", "gate.py"):  # the owners of the feature layout and of the gate rule
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line):
                hits.append(f"{path.name}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_importing_the_layout_owner_loads_no_torch():
    """egr.weights reads a weights' provenance (its schema included) without importing torch."""
    code = ("import sys\nimport egr.graph, egr.weights\nassert egr.weights.read_model_info().kind == 'all_atom'\n"
            "print(sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
