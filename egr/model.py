"""EGR, the Equivariant Graph Refiner: message-passing layers, graph linear attention, the per-residue QA
head and the docking-quality head.

The network maps one or more atom graphs (node features, coordinates in Å, fixed k-NN topology,
invariant edge features) to refined coordinates and a per-node quality estimate in [0, 1]. The layer
equations are those of docs/design.md ("EGR, precisely"); for every layer l, with x⁰, h⁰ the stack's input:

    x̂_ji = (x_j − x_i) / (‖x_j − x_i‖ + C)
    ρ_ji = [exp(−‖x̂_ji‖² / b^k)]_{k=0..K−1}
    m_ji = φ_e([h_j, h_i, e_ji, ρ_ji])
    a_i  = Q_i (Kᵀ V) / n                       (per graph, per head)
    x_i' = α x_i⁰ + (1 − α) x_i + mean_j x̂_ji φ_x(m_ji)   (all layers but the last)
    h_i' = β φ_h([LN(h_i), mean_j m_ji, a_i, h_i⁰]) + (1 − β) h_i

The docking-quality head (predicted DockQ) reads the final features of the same layers run with every
coordinate update off (the input pass): per interface, the mean and the maximum of the normalised
features over its pooled nodes (:mod:`egr.interface`), with the interface's two physics counts, go
through an MLP to one logit; predicted DockQ = sigmoid(logit). Training runs that pass over interface
crops, inference reads the full-graph input pass that the never-worse gate runs anyway (the two agree
to 0.003 in predicted DockQ: MODEL_CARD.md); the refined structure's estimate reads the refinement
pass's final features.

Coordinates only ever enter through differences and are updated by sums of difference vectors
weighted with invariant scalars, so the output is E(3)-equivariant (rotations, reflections,
translations) and the QA output is E(3)-invariant, given E(3)-invariant node and edge features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from egr.graph import ALL_ATOM_SCHEMA, GraphSchema, LayoutError, layout_of
from egr.interface import N_PHYSICS

__all__ = ["EGR", "EGRConfig", "EGRLayer", "Passes"]

_LEAKY_SLOPE = 0.01
# Added under the square root of squared distances: keeps the gradient of ‖d‖ finite for
# coincident atoms (duplicated records in a decoy) while changing distances by ≤ 1e-4 Å.
_DIST_EPS = 1e-8


@dataclass
class EGRConfig:
    """Hyperparameters of :class:`EGR`; plain scalars only, so ``dataclasses.asdict`` round-trips via JSON.

    Attributes:
        node_in: node feature width (the layouts are :data:`egr.graph.ALL_ATOM_SCHEMA`, the default, and
            :data:`egr.graph.CA_SCHEMA`).
        edge_in: edge feature width (same layouts).
        hidden: width of node embeddings and messages; must be divisible by ``heads``.
        num_layers: number of EGR layers (≥ 1); all but the last update coordinates.
        heads: attention heads of the global linear attention.
        alpha: coordinate skip strength towards the stack's input coordinates.
        beta: weight of the new features in the feature update (1 − beta keeps the old ones).
        num_radial: number of radial features exp(−‖x̂‖² / radial_base^k), k = 0..num_radial−1.
        radial_base: base b of the radial length scales.
        coord_norm_const: C in x̂ = d / (‖d‖ + C), in Å.
        dropout: dropout probability inside every MLP (after the LayerNorm); 0 disables it.
        coord_init_gain: Xavier gain of φ_x's output layer; small, so that an untrained model
            leaves coordinates (almost) where they are.
    """

    node_in: int = ALL_ATOM_SCHEMA.node_in
    edge_in: int = ALL_ATOM_SCHEMA.edge_in
    hidden: int = 128
    num_layers: int = 4
    heads: int = 4
    alpha: float = 0.5
    beta: float = 0.5
    num_radial: int = 15
    radial_base: float = 1.5
    coord_norm_const: float = 1.0
    dropout: float = 0.0
    coord_init_gain: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("node_in", "edge_in", "hidden", "num_layers", "heads", "num_radial"):
            if getattr(self, name) < 1:
                raise ValueError(f"EGRConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"EGRConfig.hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        for name in ("alpha", "beta"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"EGRConfig.{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"EGRConfig.dropout must lie in [0, 1), got {self.dropout}")
        if self.radial_base <= 1.0:
            raise ValueError(f"EGRConfig.radial_base must be > 1, got {self.radial_base}")
        if self.coord_norm_const <= 0.0:
            raise ValueError(f"EGRConfig.coord_norm_const must be > 0, got {self.coord_norm_const}")


@dataclass(frozen=True)
class Passes:
    """Outputs of :meth:`EGR.passes`: refined coordinates (n, 3) Å, per-node QA of the refined (``qa``) and
    of the input structure (``qa_input``), (n,) in [0, 1], and the final node features (n, hidden) of the
    refinement pass (``features``) and of the input pass (``features_input``; None without one)."""

    coords: Tensor
    qa: Tensor
    qa_input: Tensor | None
    features: Tensor
    features_input: Tensor | None


class _MLP(nn.Module):
    """Linear → LeakyReLU(0.01) → LayerNorm → Dropout → Linear, applied to the last dimension."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.lin1 = nn.Linear(d_in, d_hidden)
        self.norm = nn.LayerNorm(d_hidden)
        self.drop = nn.Dropout(dropout)
        self.lin2 = nn.Linear(d_hidden, d_out)

    def forward(self, z: Tensor) -> Tensor:
        """z (..., d_in) → (..., d_out)."""
        return self.from_preactivation(self.lin1(z))

    def from_preactivation(self, pre: Tensor) -> Tensor:
        """Finish the MLP from ``lin1``'s output, (..., d_hidden) → (..., d_out)."""
        return self.lin2(self.drop(self.norm(F.leaky_relu(pre, _LEAKY_SLOPE))))


class _Topology:
    """Index bookkeeping shared by all layers of one forward pass.

    Holds the destination of every edge (with the inverse in-degree where edges are not grouped by
    destination, for means over incoming edges) and, for the per-graph attention, each node's graph
    and its slot inside a dense (num_graphs, max_nodes) layout. ``batch`` need not be sorted.
    """

    def __init__(self, edge_index: Tensor, batch: Tensor | None, num_nodes: int) -> None:
        device = edge_index.device
        self.src, self.dst = edge_index[0], edge_index[1]
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
        self.batch = batch
        self.num_graphs = int(batch.max()) + 1 if num_nodes else 1
        self.counts = torch.bincount(batch, minlength=self.num_graphs)  # (B,)
        self.max_nodes = int(self.counts.max()) if num_nodes else 0
        # Rank of each node among the nodes of its graph, in input order: a stable sort groups the
        # graphs, and subtracting each graph's start offset turns sorted positions into ranks.
        order = torch.argsort(batch, stable=True)
        starts = torch.cumsum(self.counts, 0) - self.counts
        self.slot = torch.empty_like(batch)
        self.slot[order] = torch.arange(num_nodes, device=device) - starts[batch[order]]
        self.dense_row = batch * self.max_nodes + self.slot  # row of each node in the flattened dense layout
        self.num_nodes = num_nodes
        # k-NN graphs (egr.graph.knn_edges) list each node's k incoming edges together, node by node.
        # Then per-destination gathers become broadcasts and means over incoming edges become a
        # reshape and mean, which avoids the two slowest kernels of a layer (index and index_add).
        num_edges = self.dst.shape[0]
        k = num_edges // num_nodes if num_nodes else 0
        grouped = k > 0 and num_edges == k * num_nodes and bool(
            torch.equal(self.dst, torch.arange(num_nodes, device=device).repeat_interleave(k)))
        self.k = k if grouped else None
        self.inv_degree = None  # (n,) for means over any other edge list
        if self.k is None:
            # Nodes without incoming edges get a zero mean rather than 0/0.
            self.inv_degree = 1.0 / torch.bincount(self.dst, minlength=num_nodes).clamp(min=1)

    def at_dst(self, values: Tensor) -> Tensor:
        """Node ``values`` (n, F) at each edge's destination → (E, F); a repeat, not a gather, where edges are grouped."""
        if self.k is None:
            return values.index_select(0, self.dst)
        return values.unsqueeze(1).expand(-1, self.k, -1).reshape(-1, values.shape[1])

    def add_at_dst(self, edge_values: Tensor, node_values: Tensor) -> Tensor:
        """``edge_values`` (E, F) + each edge's destination row of ``node_values`` (n, F), in place."""
        if self.k is None:
            return edge_values.add_(node_values.index_select(0, self.dst))
        edge_values.view(self.num_nodes, self.k, -1).add_(node_values.unsqueeze(1))
        return edge_values

    def mean_incoming(self, values: Tensor) -> Tensor:
        """Mean of per-edge ``values`` (E, F) over each node's incoming edges → (n, F)."""
        if self.k is not None:
            return values.view(self.num_nodes, self.k, values.shape[1]).mean(1)
        out = values.new_zeros((self.num_nodes, values.shape[1])).index_add(0, self.dst, values)
        return out * self.inv_degree.to(values.dtype).unsqueeze(1)

    def graph_mean(self, values: Tensor) -> Tensor:
        """Per-graph mean of node ``values`` (n, F) → (B, F)."""
        out = values.new_zeros((self.num_graphs, values.shape[1])).index_add(0, self.batch, values)
        return out / self.counts.clamp(min=1).to(values.dtype).unsqueeze(1)

    def to_dense(self, values: Tensor) -> Tensor:
        """Scatter node ``values`` (n, *S) into a zero-padded (B, max_nodes, *S) tensor."""
        if self.num_graphs == 1:
            return values.unsqueeze(0)  # slot = input order, so the layout is the values themselves
        dense = values.new_zeros((self.num_graphs * self.max_nodes, *values.shape[1:]))
        dense = dense.index_copy(0, self.dense_row, values)
        return dense.view(self.num_graphs, self.max_nodes, *values.shape[1:])

    def from_dense(self, dense: Tensor) -> Tensor:
        """Inverse of :meth:`to_dense`: (B, max_nodes, *S) → (n, *S)."""
        if self.num_graphs == 1:
            return dense[0]
        return dense.flatten(0, 1).index_select(0, self.dense_row)


class _GraphLinearAttention(nn.Module):
    """Multi-head global linear attention a = Q (Kᵀ V) / n over the nodes of each graph.

    Kᵀ V is a (head_dim × head_dim) summary per graph and head, so cost and memory are linear in
    the number of nodes; graphs of one batch are kept apart by a zero-padded dense layout, which
    costs (num_graphs × largest graph × hidden) memory. No output projection: the result feeds
    φ_h, whose first Linear already mixes the heads.
    """

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.qkv = nn.Linear(hidden, 3 * hidden)

    def forward(self, h: Tensor, topo: _Topology) -> Tensor:
        """h (n, hidden) → a (n, hidden)."""
        n = h.shape[0]
        q, k, v = self.qkv(h).view(n, 3, self.heads, self.head_dim).unbind(1)
        # Padding rows are zero in K and V, so they add nothing to Kᵀ V.
        kv = torch.einsum("bnhd,bnhe->bhde", topo.to_dense(k), topo.to_dense(v))
        kv = kv / topo.counts.clamp(min=1).to(kv.dtype).view(-1, 1, 1, 1)
        # Q goes through the dense layout too: gathering Kᵀ V per node would cost n × hidden × head_dim.
        a = torch.einsum("bnhd,bhde->bnhe", topo.to_dense(q), kv)
        return topo.from_dense(a).reshape(n, self.heads * self.head_dim)


class EGRLayer(nn.Module):
    """One EGR layer (docs/design.md, "EGR, precisely"); ``update_coords=False`` for the stack's last layer."""

    def __init__(self, config: EGRConfig, update_coords: bool) -> None:
        super().__init__()
        hid = config.hidden
        self.hidden = hid
        self.alpha = config.alpha
        self.beta = config.beta
        self.coord_norm_const = config.coord_norm_const
        self.norm = nn.LayerNorm(hid)
        self.attention = _GraphLinearAttention(hid, config.heads)
        self.phi_e = _MLP(2 * hid + config.edge_in + config.num_radial, hid, hid, config.dropout)
        self.phi_h = _MLP(4 * hid, hid, hid, config.dropout)
        self.phi_x: _MLP | None = None
        if update_coords:
            self.phi_x = _MLP(hid, hid, 1, config.dropout)
            nn.init.xavier_uniform_(self.phi_x.lin2.weight, gain=config.coord_init_gain)
            nn.init.zeros_(self.phi_x.lin2.bias)
        inv_scales = config.radial_base ** -torch.arange(config.num_radial, dtype=torch.float32)
        # Not persistent: derived from the config, so it stays out of saved weights.
        self.register_buffer("radial_inv_scales", inv_scales, persistent=False)

    def edge_geometry(self, x: Tensor, edge_attr: Tensor, topo: _Topology) -> tuple[Tensor, Tensor]:
        """(x̂ (E, 3), [e_ji, ρ_ji] (E, edge_in + R)) for coordinates ``x`` (n, 3) Å. Layers of one
        stack share the config, so this is the same in every layer for the same ``x``."""
        diff = x.index_select(0, topo.src) - topo.at_dst(x)  # (E, 3), x_j − x_i
        dist = torch.sqrt(diff.square().sum(1, keepdim=True) + _DIST_EPS)
        x_hat = diff / (dist + self.coord_norm_const)
        rho = torch.exp(-x_hat.square().sum(1, keepdim=True) * self.radial_inv_scales)  # (E, R)
        return x_hat, torch.cat([edge_attr, rho], 1)

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        h0: Tensor,
        x0: Tensor,
        edge_attr: Tensor,
        topo: _Topology,
        update_coords: bool = True,
        geometry: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Update features and (unless last layer, or ``update_coords`` is False) coordinates.

        Args:
            h: (n, hidden) current node features.
            x: (n, 3) current coordinates, Å.
            h0: (n, hidden) node features at the stack's input.
            x0: (n, 3) coordinates at the stack's input, Å.
            edge_attr: (E, edge_in) invariant edge features, edges ordered as ``topo``.
            topo: index bookkeeping of the batch.
            geometry: :meth:`edge_geometry` of ``x``, where the caller already has it.

        Returns:
            (h', x'): (n, hidden) features and (n, 3) coordinates in Å.
        """
        src = topo.src
        x_hat, edge_input = geometry if geometry is not None else self.edge_geometry(x, edge_attr, topo)

        # φ_e's first Linear on [h_j, h_i, e_ji, ρ_ji] is split by input block so the h parts are
        # projected once per node and gathered, instead of materialising an (E, 2·hidden + …) concat.
        # The in-place adds keep one fewer (E, hidden) buffer alive and are autograd-safe, as
        # neither addition nor the producing addmm needs its output for the backward pass.
        w = self.phi_e.lin1.weight
        hid = self.hidden
        pre = F.linear(edge_input, w[:, 2 * hid :], self.phi_e.lin1.bias)
        pre += F.linear(h, w[:, :hid]).index_select(0, src)
        topo.add_at_dst(pre, F.linear(h, w[:, hid : 2 * hid]))
        m = self.phi_e.from_preactivation(pre)  # (E, hidden)

        if self.phi_x is not None and update_coords:
            shift = topo.mean_incoming(x_hat * self.phi_x(m))
            x = self.alpha * x0 + (1.0 - self.alpha) * x + shift

        h_norm = self.norm(h)
        # Attention reads the normalised features: Q (Kᵀ V) is cubic in the scale of h.
        a = self.attention(h_norm, topo)
        h_new = self.phi_h(torch.cat([h_norm, topo.mean_incoming(m), a, h0], 1))
        h = self.beta * h_new + (1.0 - self.beta) * h
        return h, x


class EGR(nn.Module):
    """Equivariant Graph Refiner: embedding → ``num_layers`` EGR layers → per-node QA head.

    ``schema`` is the feature layout the model reads (:class:`egr.graph.GraphSchema`; the weights' own,
    :func:`egr.weights.load_model`); by default the layout this egr builds with the config's widths, None
    where there is none (then only the widths are checked). A graph of another layout is refused with a
    :class:`egr.graph.LayoutError` that names what differs.
    """

    def __init__(self, config: EGRConfig, schema: GraphSchema | None = None) -> None:
        super().__init__()
        self.config = config
        self.schema = schema if schema is not None else layout_of(config.node_in, config.edge_in)
        if self.schema is not None and (self.schema.node_in, self.schema.edge_in) != (config.node_in, config.edge_in):
            raise ValueError(f"feature schema ({self.schema.describe('node')} node, {self.schema.describe('edge')} "
                             f"edge features) does not match node_in={config.node_in}, edge_in={config.edge_in}")
        self.embed = nn.Linear(config.node_in, config.hidden)
        self.layers = nn.ModuleList(
            EGRLayer(config, update_coords=i < config.num_layers - 1) for i in range(config.num_layers)
        )
        self.qa_norm = nn.LayerNorm(config.hidden)
        self.qa_out = nn.Linear(config.hidden, 1)
        # clamp(·, 0, 1) has no gradient outside [0, 1]: start every node mid-range (≈ 0.5 ± 0.1).
        nn.init.normal_(self.qa_out.weight, std=0.1 / math.sqrt(config.hidden))
        nn.init.constant_(self.qa_out.bias, 0.5)
        self.dock_norm = nn.LayerNorm(config.hidden)
        self.dock_head = _MLP(2 * config.hidden + N_PHYSICS, config.hidden, 1, config.dropout)

    def forward(
        self,
        x: Tensor,
        pos: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        batch: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Refine coordinates and estimate per-node quality.

        Args:
            x: (n, node_in) float node features.
            pos: (n, 3) coordinates, Å.
            edge_index: (2, E) long; row 0 = source j, row 1 = destination i.
            edge_attr: (E, edge_in) float edge features, E(3)-invariant.
            batch: (n,) long graph index per node when several graphs share the tensors
                (need not be sorted); None = one graph.

        Returns:
            (coords, qa): refined coordinates (n, 3) in Å and per-node quality (n,) in [0, 1].
        """
        passes = self._passes(x, pos, edge_index, edge_attr, batch, input_pass=False)
        return passes.coords, passes.qa

    def forward_with_input_pass(
        self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`forward` plus the QA of the input structure itself (n,): the same layers with every
        coordinate update off, as the never-worse gate (:mod:`egr.gate`) needs. Both passes see the
        input coordinates in the first layer, so that layer is computed once."""
        passes = self._passes(x, pos, edge_index, edge_attr, batch, input_pass=True)
        return passes.coords, passes.qa, passes.qa_input

    def docking_logits(self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None,
                       pool_node: Tensor, pool_interface: Tensor, physics: Tensor) -> Tensor:
        """Docking-quality logits of interfaces from an input pass (every coordinate update off) over graphs of
        the structures themselves; sigmoid = predicted DockQ. Training runs it on interface crop graphs
        (:func:`egr.graph.docking_input`), scoring on the full graph, where it equals the input pass of
        :meth:`passes`.

        Args:
            x, pos, edge_index, edge_attr, batch: the graphs, as in :meth:`forward`.
            pool_node, pool_interface, physics: as in :meth:`docking_from_features`.

        Returns:
            (G,) logits.
        """
        topo, _, x0, h0 = self._start(x, pos, edge_index, edge_attr, batch)
        geometry = self.layers[0].edge_geometry(x0, edge_attr, topo)  # coordinates stay at x0 throughout
        h = h0
        for layer in self.layers:
            h, _ = layer(h, x0, h0, x0, edge_attr, topo, update_coords=False, geometry=geometry)
        return self.docking_from_features(h, pool_node, pool_interface, physics)

    def docking_from_features(self, h: Tensor, pool_node: Tensor, pool_interface: Tensor, physics: Tensor) -> Tensor:
        """The docking head on final node features ``h`` (n, hidden): per interface, the mean and the maximum of
        the normalised features over its pooled nodes, with its physics inputs, through an MLP to one logit.

        Args:
            pool_node: (M,) long node of each pooled membership; pool_interface: (M,) long, its interface
                (0..G-1, every interface with at least one node).
            physics: (G, N_PHYSICS) float, the interfaces' physics inputs.

        Returns:
            (G,) logits.
        """
        members = self.dock_norm(h.index_select(0, pool_node))  # (M, hidden)
        groups = physics.shape[0]
        index = pool_interface.unsqueeze(1).expand_as(members)
        total = members.new_zeros((groups, members.shape[1])).index_add(0, pool_interface, members)
        count = torch.bincount(pool_interface, minlength=groups).clamp(min=1).to(members.dtype).unsqueeze(1)
        peak = members.new_zeros((groups, members.shape[1])).scatter_reduce(0, index, members, "amax",
                                                                             include_self=False)
        return self.dock_head(torch.cat([total / count, peak, physics.to(members.dtype)], 1)).squeeze(1)

    def passes(self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None = None
               ) -> Passes:
        """:meth:`forward_with_input_pass` with both passes' final node features, which
        :meth:`docking_from_features` turns into the docking estimates of the input and the refined structure."""
        return self._passes(x, pos, edge_index, edge_attr, batch, input_pass=True)

    def _passes(self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None,
                input_pass: bool) -> Passes:
        topo, centre, x0, h0 = self._start(x, pos, edge_index, edge_attr, batch)
        h, coords = h0, x0
        h_input = None
        # the input pass sees x0 in every layer: its edge geometry is computed once
        geometry0 = self.layers[0].edge_geometry(x0, edge_attr, topo) if input_pass else None
        for index, layer in enumerate(self.layers):
            if input_pass and index > 0:
                h_input, _ = layer(h_input, x0, h0, x0, edge_attr, topo, update_coords=False, geometry=geometry0)
            h, coords = layer(h, coords, h0, x0, edge_attr, topo, geometry=geometry0 if index == 0 else None)
            if input_pass and index == 0:
                h_input = h
        qa_input = self._qa(h_input) if input_pass else None
        return Passes(coords + centre, self._qa(h), qa_input, h, h_input)

    def _start(self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None
               ) -> tuple[_Topology, Tensor, Tensor, Tensor]:
        """Checked inputs → (topology, per-node graph centroid (n, 3), centred coordinates x⁰ (n, 3), h⁰)."""
        self._check_inputs(x, pos, edge_index, edge_attr, batch)
        topo = _Topology(edge_index, batch, x.shape[0])
        # Work relative to each graph's centroid: float32 resolves ~1e-4 Å at 1000 Å from the
        # origin, and the model is translation-equivariant, so nothing else changes.
        centre = topo.graph_mean(pos).index_select(0, topo.batch)
        return topo, centre, pos - centre, self.embed(x)

    def _qa(self, h: Tensor) -> Tensor:
        return self.qa_out(self.qa_norm(h)).squeeze(1).clamp(0.0, 1.0)

    def _check_inputs(
        self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None
    ) -> None:
        """Raise ValueError on shape or index mismatches, which would otherwise fail deep inside."""
        cfg = self.config
        n = x.shape[0]
        if x.dim() != 2:
            raise ValueError(f"x must be (n, {cfg.node_in}), got {tuple(x.shape)}")
        if pos.shape != (n, 3):
            raise ValueError(f"pos must be ({n}, 3), got {tuple(pos.shape)}")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype != torch.long:
            raise ValueError(
                f"edge_index must be a (2, E) long tensor, got {tuple(edge_index.shape)} {edge_index.dtype}"
            )
        num_edges = edge_index.shape[1]
        if edge_attr.dim() != 2 or edge_attr.shape[0] != num_edges:
            raise ValueError(f"edge_attr must be ({num_edges}, {cfg.edge_in}), got {tuple(edge_attr.shape)}")
        if self.schema is not None:
            reason = self.schema.refusal(x.shape[1], edge_attr.shape[1])
            if reason:
                raise LayoutError(reason)
        elif x.shape[1] != cfg.node_in:
            raise ValueError(f"x must be (n, {cfg.node_in}), got {tuple(x.shape)}")
        elif edge_attr.shape[1] != cfg.edge_in:
            raise ValueError(f"edge_attr must be ({num_edges}, {cfg.edge_in}), got {tuple(edge_attr.shape)}")
        if num_edges and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
            raise ValueError(f"edge_index refers to nodes outside [0, {n})")
        if batch is not None and (batch.shape != (n,) or batch.dtype != torch.long):
            raise ValueError(f"batch must be a ({n},) long tensor, got {tuple(batch.shape)} {batch.dtype}")
