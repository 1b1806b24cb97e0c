"""Tests of egr.model: symmetry (E(3), permutation), batching, initialisation, gradients, configs."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from egr.graph import ALL_ATOM_SCHEMA, CA_SCHEMA, GraphSchema, LayoutError
from egr.model import EGR, EGRConfig, _Topology
from egr.weights import SCHEMA_KEY, config_path, load_model, read_model_info, save_weights

K_NEIGHBOURS = 20


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def knn_edges(pos: np.ndarray, k: int = K_NEIGHBOURS) -> torch.Tensor:
    """(2, n·k) edges from each node's k nearest other nodes (row 0, source) to it (row 1)."""
    _, nbrs = cKDTree(pos).query(pos, k=k + 1)
    src = nbrs[:, 1:].reshape(-1)  # column 0 is the node itself
    dst = np.repeat(np.arange(len(pos)), k)
    return torch.from_numpy(np.stack([src, dst])).long()


def random_graph(n: int, cfg: EGRConfig, seed: int) -> dict[str, torch.Tensor]:
    """A protein-like random graph: ~0.05 atoms/Å³ density, centred away from the origin."""
    rng = np.random.default_rng(seed)
    side = (n / 0.05) ** (1 / 3)
    pos = rng.uniform(0.0, side, size=(n, 3)) + np.array([40.0, -25.0, 12.0])
    edge_index = knn_edges(pos)
    gen = torch.Generator().manual_seed(seed)
    return {
        "x": torch.rand(n, cfg.node_in, generator=gen),
        "pos": torch.from_numpy(pos).float(),
        "edge_index": edge_index,
        "edge_attr": torch.rand(edge_index.shape[1], cfg.edge_in, generator=gen),
    }


def small_config(**overrides: float | int) -> EGRConfig:
    """A narrow, test-sized configuration with the default depth."""
    return EGRConfig(**{"hidden": 32, "heads": 4, "num_layers": 4, **overrides})


def make_model(cfg: EGRConfig, seed: int = 0, strong_coords: bool = True) -> EGR:
    """An eval-mode EGR; with ``strong_coords`` φ_x's output layers are rescaled to move atoms by ~Å.

    A freshly initialised model barely moves atoms, so symmetry checks on it could pass for a
    broken coordinate update; the strong variant makes those checks able to fail.
    """
    torch.manual_seed(seed)
    model = EGR(cfg).eval()
    if strong_coords:
        for layer in model.layers:
            if layer.phi_x is not None:
                torch.nn.init.normal_(layer.phi_x.lin2.weight, std=1.0 / cfg.hidden**0.5)
                torch.nn.init.normal_(layer.phi_x.lin2.bias, std=0.5)
    return model


def random_orthogonal(seed: int, reflect: bool) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return q


@pytest.mark.parametrize("reflect", [False, True], ids=["rotation", "rotoreflection"])
def test_e3_equivariance(reflect: bool) -> None:
    cfg = small_config()
    model = make_model(cfg)
    g = random_graph(300, cfg, seed=1)
    rot = random_orthogonal(seed=2, reflect=reflect)
    assert torch.det(rot).item() == pytest.approx(-1.0 if reflect else 1.0)
    shift = torch.tensor([130.0, -75.0, 210.0], dtype=torch.float64)

    with torch.no_grad():
        coords, qa = model(**g)
        moved = (g["pos"].double() @ rot.T + shift).float()
        coords_t, qa_t = model(**{**g, "pos": moved})

    displacement = (coords - g["pos"]).norm(dim=1)
    assert displacement.mean() > 0.1, "coordinate updates too small for the test to be meaningful"
    expected = (coords.double() @ rot.T + shift).float()
    assert (coords_t - expected).abs().max().item() <= 1e-3
    assert (qa_t - qa).abs().max().item() <= 1e-4
    assert 0.0 < qa.min() and qa.max() < 1.0  # unclamped, so invariance is actually checked


def test_permutation_equivariance() -> None:
    cfg = small_config()
    model = make_model(cfg)
    g = random_graph(250, cfg, seed=3)
    n = g["x"].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(4))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    edge_order = torch.randperm(g["edge_index"].shape[1], generator=torch.Generator().manual_seed(5))
    permuted = {
        "x": g["x"][perm],
        "pos": g["pos"][perm],
        "edge_index": inverse[g["edge_index"][:, edge_order]],
        "edge_attr": g["edge_attr"][edge_order],
    }
    with torch.no_grad():
        coords, qa = model(**g)
        coords_p, qa_p = model(**permuted)
    assert (coords - g["pos"]).norm(dim=1).mean() > 0.1
    torch.testing.assert_close(coords_p, coords[perm], atol=1e-4, rtol=0)
    torch.testing.assert_close(qa_p, qa[perm], atol=1e-5, rtol=0)


def test_grouped_and_scattered_edge_lists_agree() -> None:
    # k-NN edges listed node by node take the reshape path of _Topology; any other order the
    # index/scatter path. Both must give the same result.
    cfg = small_config()
    model = make_model(cfg)
    g = random_graph(200, cfg, seed=9)
    order = torch.randperm(g["edge_index"].shape[1], generator=torch.Generator().manual_seed(10))
    scattered = {**g, "edge_index": g["edge_index"][:, order], "edge_attr": g["edge_attr"][order]}
    assert _Topology(g["edge_index"], None, 200).k == K_NEIGHBOURS
    assert _Topology(scattered["edge_index"], None, 200).k is None
    with torch.no_grad():
        coords, qa, qa_input = model.forward_with_input_pass(**g)
        coords_s, qa_s, qa_input_s = model.forward_with_input_pass(**scattered)
    torch.testing.assert_close(coords_s, coords, atol=1e-4, rtol=0)
    torch.testing.assert_close(qa_s, qa, atol=1e-5, rtol=0)
    torch.testing.assert_close(qa_input_s, qa_input, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shuffle", [False, True], ids=["contiguous", "interleaved"])
def test_batch_matches_single_graphs(shuffle: bool) -> None:
    cfg = small_config()
    model = make_model(cfg)
    graphs = [random_graph(180, cfg, seed=6), random_graph(120, cfg, seed=7)]
    with torch.no_grad():
        singles = [model(**g) for g in graphs]

    offsets = [0, graphs[0]["x"].shape[0]]
    batched = {
        "x": torch.cat([g["x"] for g in graphs]),
        "pos": torch.cat([g["pos"] for g in graphs]),
        "edge_index": torch.cat([g["edge_index"] + off for g, off in zip(graphs, offsets)], 1),
        "edge_attr": torch.cat([g["edge_attr"] for g in graphs]),
        "batch": torch.cat([torch.full((g["x"].shape[0],), b) for b, g in enumerate(graphs)]),
    }
    n = batched["x"].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(8)) if shuffle else torch.arange(n)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    batched = {
        "x": batched["x"][perm],
        "pos": batched["pos"][perm],
        "edge_index": inverse[batched["edge_index"]],
        "edge_attr": batched["edge_attr"],
        "batch": batched["batch"][perm],
    }
    with torch.no_grad():
        coords, qa = model(**batched)
    coords, qa = coords[inverse], qa[inverse]  # back to concatenation order

    for (coords_1, qa_1), off, g in zip(singles, offsets, graphs):
        part = slice(off, off + g["x"].shape[0])
        torch.testing.assert_close(coords[part], coords_1, atol=1e-4, rtol=0)
        torch.testing.assert_close(qa[part], qa_1, atol=1e-5, rtol=0)


def test_attention_does_not_leak_across_graphs() -> None:
    # Changing graph 1's features must not change graph 0's outputs; in a model whose attention
    # pooled over the whole batch it would, since attention is the only path between the graphs.
    cfg = small_config()
    model = make_model(cfg)
    g0, g1 = random_graph(100, cfg, seed=9), random_graph(100, cfg, seed=10)

    def run(features_1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return model(
                torch.cat([g0["x"], features_1]),
                torch.cat([g0["pos"], g1["pos"]]),
                torch.cat([g0["edge_index"], g1["edge_index"] + 100], 1),
                torch.cat([g0["edge_attr"], g1["edge_attr"]]),
                torch.repeat_interleave(torch.arange(2), 100),
            )

    coords_a, qa_a = run(g1["x"])
    coords_b, qa_b = run(g1["x"] * 5.0 + 1.0)
    assert not torch.allclose(qa_a[100:], qa_b[100:])
    torch.testing.assert_close(coords_a[:100], coords_b[:100], atol=1e-5, rtol=0)
    torch.testing.assert_close(qa_a[:100], qa_b[:100], atol=1e-6, rtol=0)


def test_attention_is_global_within_a_graph() -> None:
    # Two connected components of one graph exchange information only through attention.
    cfg = small_config()
    model = make_model(cfg)
    g0, g1 = random_graph(100, cfg, seed=11), random_graph(100, cfg, seed=12)

    def run(features_1: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            _, qa = model(
                torch.cat([g0["x"], features_1]),
                torch.cat([g0["pos"], g1["pos"] + 500.0]),
                torch.cat([g0["edge_index"], g1["edge_index"] + 100], 1),
                torch.cat([g0["edge_attr"], g1["edge_attr"]]),
            )
        return qa

    assert not torch.allclose(run(g1["x"])[:100], run(g1["x"] * 5.0 + 1.0)[:100], atol=1e-6)


def test_near_identity_initialisation() -> None:
    cfg = EGRConfig()  # the production defaults
    torch.manual_seed(13)
    model = EGR(cfg).eval()
    g = random_graph(400, cfg, seed=13)
    with torch.no_grad():
        coords, qa = model(**g)
    assert (coords - g["pos"]).norm(dim=1).max().item() < 0.01
    assert ((qa > 0.0) & (qa < 1.0)).all()


def test_zero_updates_keep_coordinates() -> None:
    # With φ_x silenced, the α-skip must return the input coordinates exactly, whatever α is.
    cfg = small_config(alpha=0.3)
    model = make_model(cfg, strong_coords=False)
    for layer in model.layers:
        if layer.phi_x is not None:
            torch.nn.init.zeros_(layer.phi_x.lin2.weight)
    g = random_graph(120, cfg, seed=14)
    with torch.no_grad():
        coords, _ = model(**g)
    torch.testing.assert_close(coords, g["pos"], atol=1e-5, rtol=0)


def test_gradients_reach_every_parameter() -> None:
    cfg = small_config(num_layers=3)
    model = make_model(cfg, strong_coords=False).train()
    g = random_graph(120, cfg, seed=15)
    coords, qa = model(**g)
    chain = torch.arange(120) >= 60  # the docking head pools over two made-up "interfaces"
    pool_node = torch.arange(120)
    logits = model.docking_logits(**g, batch=None, pool_node=pool_node, pool_interface=chain.long(),
                                  physics=torch.tensor([[5.0, 1.0], [4.0, 0.0]]))
    loss = (torch.nn.functional.huber_loss(coords, g["pos"] + 0.3, delta=1.0) + (qa - 0.7).square().mean()
            + logits.square().mean())
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient for {name}"
        assert param.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_coincident_atoms_have_finite_gradients() -> None:
    cfg = small_config(num_layers=2)
    model = make_model(cfg)
    g = random_graph(60, cfg, seed=16)
    pos = g["pos"].clone()
    pos[1] = pos[0]  # a duplicated atom record
    pos.requires_grad_(True)
    edge_index = torch.cat([g["edge_index"], torch.tensor([[1], [0]])], 1)  # make sure 1 → 0 is an edge
    edge_attr = torch.cat([g["edge_attr"], g["edge_attr"][:1]])
    coords, qa = model(g["x"], pos, edge_index, edge_attr)
    (coords.sum() + qa.sum()).backward()
    assert torch.isfinite(pos.grad).all()


@pytest.mark.parametrize(("num_layers", "hidden", "heads"), [(1, 16, 1), (2, 24, 3), (5, 64, 8)])
def test_configurable_architecture(num_layers: int, hidden: int, heads: int) -> None:
    cfg = EGRConfig(node_in=28, edge_in=14, num_layers=num_layers, hidden=hidden, heads=heads, num_radial=7)
    model = make_model(cfg)
    g = random_graph(90, cfg, seed=17)
    with torch.no_grad():
        coords, qa = model(**g)
    assert coords.shape == (90, 3) and qa.shape == (90,)
    assert torch.isfinite(coords).all() and ((qa >= 0.0) & (qa <= 1.0)).all()
    assert len(model.layers) == num_layers
    if num_layers == 1:  # the single layer is the last, which updates features only
        torch.testing.assert_close(coords, g["pos"], atol=1e-5, rtol=0)
    else:
        assert (coords - g["pos"]).norm(dim=1).mean() > 0.01


def test_config_round_trips_through_json() -> None:
    cfg = EGRConfig(hidden=200, heads=5, dropout=0.1)
    assert EGRConfig(**json.loads(json.dumps(asdict(cfg)))) == cfg


@pytest.mark.parametrize(
    "overrides", [{"hidden": 30, "heads": 4}, {"num_layers": 0}, {"alpha": 1.5}, {"dropout": 1.0}]
)
def test_invalid_config_is_rejected(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EGRConfig(**overrides)


def test_bad_inputs_are_rejected() -> None:
    cfg = small_config()
    model = make_model(cfg)
    g = random_graph(50, cfg, seed=18)
    with pytest.raises(ValueError, match="edge features .* = 15, graph has 14"):
        model(**{**g, "edge_attr": g["edge_attr"][:, :-1]})
    with pytest.raises(ValueError, match="outside"):
        model(**{**g, "edge_index": g["edge_index"] + 1})



def test_model_schema_follows_the_config_and_refuses_other_layouts() -> None:
    assert EGR(small_config()).schema == ALL_ATOM_SCHEMA
    assert EGR(small_config(node_in=CA_SCHEMA.node_in, edge_in=CA_SCHEMA.edge_in)).schema == CA_SCHEMA
    assert EGR(small_config(node_in=5, edge_in=3)).schema is None  # no layout: widths checked only
    with pytest.raises(ValueError, match="does not match node_in"):
        EGR(small_config(), schema=CA_SCHEMA)
    all_atom = make_model(small_config())
    ca = random_graph(40, small_config(node_in=CA_SCHEMA.node_in, edge_in=CA_SCHEMA.edge_in), seed=19)
    with pytest.raises(LayoutError) as refused:
        all_atom(**ca)
    assert str(refused.value) == (
        "feature layout differs: weights expect node features atom_name(38)+surface(1) = 39, graph has "
        "residue(21)+surface(1)+dihedrals(6) = 28; edge features sin_index(1)+same_chain(1)+geometry(12)+"
        "covalent(1) = 15, graph has sin_index(1)+same_chain(1)+geometry(12) = 14 (all_atom weights, ca graph)")
    # weights of an older all-atom layout with the same widths are refused on today's graphs too
    older = GraphSchema("all_atom", (("atom_name", 37), ("surface", 2)), ALL_ATOM_SCHEMA.edge)
    model = EGR(small_config(), schema=older).eval()
    with pytest.raises(LayoutError, match=r"weights expect node features atom_name\(37\)\+surface\(2\) = 39, "
                                          r"graph has atom_name\(38\)\+surface\(1\) = 39$"):
        model(**random_graph(40, small_config(), seed=20))


def test_schema_round_trips_through_saved_weights(tmp_path) -> None:
    weights = tmp_path / "w.safetensors"
    cfg = small_config(node_in=CA_SCHEMA.node_in, edge_in=CA_SCHEMA.edge_in)
    save_weights(make_model(cfg), weights, trained=False, description="test")
    sidecar = json.loads(config_path(weights).read_text())
    assert GraphSchema.from_json(sidecar[SCHEMA_KEY]) == CA_SCHEMA
    model, info = load_model(weights)
    assert model.schema == CA_SCHEMA and info.kind == "ca" == read_model_info(weights).kind
    # an older sidecar without a schema: the layout this egr builds with its widths
    del sidecar[SCHEMA_KEY]
    config_path(weights).write_text(json.dumps(sidecar))
    assert load_model(weights)[0].schema == CA_SCHEMA
    # ... and refused where the widths match no layout
    sidecar["config"]["node_in"] = 30
    config_path(weights).write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="no feature schema, and node_in/edge_in 30/14 match no graph layout"):
        read_model_info(weights)
    # a stored schema must agree with the config's widths
    sidecar["config"]["node_in"] = CA_SCHEMA.node_in
    sidecar[SCHEMA_KEY] = ALL_ATOM_SCHEMA.to_json()
    config_path(weights).write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="disagrees with node_in/edge_in 28/14"):
        load_model(weights)
    with pytest.raises(ValueError, match="no graph layout"):  # weights that could never be used are not written
        save_weights(EGR(small_config(node_in=5, edge_in=3)), tmp_path / "x.safetensors", False, "test")


def test_shipped_weights_state_the_current_all_atom_layout() -> None:
    sidecar = json.loads(config_path(read_model_info().path).read_text())
    assert GraphSchema.from_json(sidecar[SCHEMA_KEY]) == ALL_ATOM_SCHEMA
