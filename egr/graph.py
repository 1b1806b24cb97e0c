"""Featurization: a cleaned complex plus its surface proximity → the EGR k-NN graph (``egr featurize``).

All-atom graph (default): one node per heavy atom, 39 node features (38-entry atom-name one-hot +
surface proximity) and 15 edge features (sin of the node-index difference within a chain, same-chain flag, 12
residue-frame geometry values, covalent-bond flag). Cα graph (``ca=True``): one node per residue with a
CA atom, 28 node features (21-way residue one-hot incl. unknown, CA surface proximity, sin/cos of φ, ψ,
ω) and 14 edge features (the all-atom ones without the covalent flag). Definitions: docs/design.md, "EGR, precisely".

This module owns that layout: :data:`ALL_ATOM_SCHEMA` and :data:`CA_SCHEMA` (:class:`GraphSchema`) name
every slice of the node and edge features with its width, the builders below assemble the features by
those names, and every reader elsewhere asks a schema for a column by name (no bare column numbers
outside this module). Weights store the schema they were trained on (:mod:`egr.weights`), and a model
refuses a graph of another layout (:meth:`GraphSchema.refusal`).

Importing this module does not import torch (the weights' provenance is read without it); the functions
that build or load tensors import it.

Residue frames need N, CA and C; where a residue lacks one of them (or they are collinear), the 12
geometry values of every edge that touches it are zero rather than a frame-dependent guess, so the
features stay invariant to rotation and translation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

from egr.chemistry import AMINO_ACIDS, ATOM_VOCAB, COVALENT_RADII
from egr.interface import interface_crop, subset
from egr.io import atomic_write_bytes
from egr.structure import Complex

if TYPE_CHECKING:
    import torch
    from torch_geometric.data import Data

K_NEIGHBOURS = 20
GRAPH_FORMAT = "egr-graph/1"
_ATOM_INDEX = {name: i for i, name in enumerate(ATOM_VOCAB)}
_RESIDUE_INDEX = {name: i for i, name in enumerate(AMINO_ACIDS)}  # unknown → len(AMINO_ACIDS)
_META_STRINGS = ("atom_names", "elements", "res_names", "chain_ids", "ins_codes")
_META_NUMBERS = ("res_seq", "occupancies", "b_factors", "residue_index", "chain_index")


class LayoutError(ValueError):
    """A graph whose feature layout differs from the one a model (its weights) expects."""


@dataclass(frozen=True)
class GraphSchema:
    """The feature layout of one graph kind: named, contiguous slices of the node and edge features.

    ``node`` and ``edge`` are ``((name, width), ...)`` in column order. Stored in the weights' JSON
    (:meth:`to_json`) so that a model can refuse a graph of another layout (:meth:`refusal`).
    """

    kind: str  # "all_atom" | "ca"
    node: tuple[tuple[str, int], ...]
    edge: tuple[tuple[str, int], ...]

    @property
    def node_in(self) -> int:
        return sum(width for _, width in self.node)

    @property
    def edge_in(self) -> int:
        return sum(width for _, width in self.edge)

    def node_slice(self, name: str) -> slice:
        """Columns of the node feature ``name``."""
        return _slice(self.node, name, f"{self.kind} node")

    def edge_slice(self, name: str) -> slice:
        """Columns of the edge feature ``name``."""
        return _slice(self.edge, name, f"{self.kind} edge")

    def node_feature(self, x, name: str):
        """The node feature ``name`` of ``x`` (n, node_in): (n,) for a one-column feature, else (n, width)."""
        return _column(x, self.node, self.node_in, name, f"{self.kind} node")

    def edge_feature(self, edge_attr, name: str):
        """The edge feature ``name`` of ``edge_attr`` (E, edge_in): (E,) for a one-column feature, else (E, width)."""
        return _column(edge_attr, self.edge, self.edge_in, name, f"{self.kind} edge")

    def describe(self, side: str) -> str:
        """``'atom_name(38)+surface(1) = 39'`` for ``side`` 'node' or 'edge'."""
        parts = self.node if side == "node" else self.edge
        return "+".join(f"{name}({width})" for name, width in parts) + f" = {sum(w for _, w in parts)}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "node": [[n, w] for n, w in self.node], "edge": [[n, w] for n, w in self.edge]}

    @classmethod
    def from_json(cls, record: dict) -> GraphSchema:
        """The schema stored by :meth:`to_json`; ValueError when ``record`` is not one."""
        try:
            schema = cls(str(record["kind"]), *(tuple((str(n), int(w)) for n, w in record[side])
                                                for side in ("node", "edge")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a feature schema: {record!r}") from exc
        if any(w < 1 for _, w in schema.node + schema.edge):
            raise ValueError(f"not a feature schema (a width < 1): {record!r}")
        return schema

    def refusal(self, node_width: int, edge_width: int) -> str:
        """'' when a graph with ``node_width`` node and ``edge_width`` edge features (a graph this egr builds, so
        of the layout :func:`layout_of` finds for those widths) is of this layout, else a one-line reason that
        names what differs, e.g. ``feature layout differs: weights expect node features atom_name(38)+surface(1)
        = 39, graph has residue(21)+surface(1)+dihedrals(6) = 28; ...``."""
        graph = layout_of(node_width, edge_width)
        if graph == self:
            return ""
        reasons = []
        for side, width in (("node", node_width), ("edge", edge_width)):
            mine = getattr(self, side)
            if graph is None:
                if width != sum(w for _, w in mine):
                    reasons.append(f"{side} features {self.describe(side)}, graph has {width}")
            elif getattr(graph, side) != mine:
                reasons.append(f"{side} features {self.describe(side)}, graph has {graph.describe(side)}")
        if not reasons:  # same widths, but a layout this egr does not build
            reasons = [f"{side} features {self.describe(side)}" for side in ("node", "edge")]
            return ("feature layout differs: weights expect " + "; ".join(reasons)
                    + f" ({self.kind}), a layout this egr does not build")
        kinds = f" ({self.kind} weights, {graph.kind} graph)" if graph is not None and graph.kind != self.kind else ""
        return "feature layout differs: weights expect " + "; ".join(reasons) + kinds


def _slice(parts: tuple[tuple[str, int], ...], name: str, what: str) -> slice:
    start = 0
    for part, width in parts:
        if part == name:
            return slice(start, start + width)
        start += width
    raise KeyError(f"no {what} feature {name!r} (has {', '.join(p for p, _ in parts)})")


def _column(features, parts: tuple[tuple[str, int], ...], total: int, name: str, what: str):
    if features.shape[-1] != total:
        raise LayoutError(f"{what} features have {features.shape[-1]} columns, the {what} layout has {total}")
    columns = _slice(parts, name, what)
    return features[:, columns.start] if columns.stop - columns.start == 1 else features[:, columns]


def _assemble(parts: tuple[tuple[str, int], ...], values: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """Concatenate the named feature blocks (each (rows,) or (rows, width)) in the layout's column order."""
    if set(values) != {name for name, _ in parts}:
        raise KeyError(f"features {sorted(values)} do not match the layout {[name for name, _ in parts]}")
    blocks = []
    for name, width in parts:
        block = np.asarray(values[name]).reshape(rows, -1)
        if block.shape[1] != width:
            raise ValueError(f"feature {name!r} has {block.shape[1]} columns, the layout says {width}")
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


_EDGE_COMMON = (("sin_index", 1), ("same_chain", 1), ("geometry", 12))
ALL_ATOM_SCHEMA = GraphSchema(
    kind="all_atom",
    node=(("atom_name", len(ATOM_VOCAB)), ("surface", 1)),
    edge=(*_EDGE_COMMON, ("covalent", 1)),
)
CA_SCHEMA = GraphSchema(
    kind="ca",
    node=(("residue", len(AMINO_ACIDS) + 1), ("surface", 1), ("dihedrals", 6)),
    edge=_EDGE_COMMON,
)
GRAPH_SCHEMAS = {schema.kind: schema for schema in (ALL_ATOM_SCHEMA, CA_SCHEMA)}


def layout_of(node_width: int, edge_width: int) -> GraphSchema | None:
    """The layout this egr builds with these feature widths, None when there is none."""
    for schema in GRAPH_SCHEMAS.values():
        if (schema.node_in, schema.edge_in) == (node_width, edge_width):
            return schema
    return None


@dataclass(frozen=True)
class GraphBundle:
    """A featurized decoy: the model's input graph and the complex it was built from (to write outputs)."""

    decoy_id: str
    graph: Data
    complex: Complex
    kind: str  # "all_atom" | "ca"
    surface_backend: list[str]  # per node of the complex's atoms: 'msms' | 'builtin'

    @property
    def schema(self) -> GraphSchema:
        """The feature layout of :attr:`graph`."""
        return GRAPH_SCHEMAS[self.kind]


def surface_proximity(graph: Data, schema: GraphSchema = ALL_ATOM_SCHEMA) -> np.ndarray:
    """(n,) float64 per-node surface proximity of ``graph`` (all-atom by default): what the docking head's
    crop graphs are built with."""
    return schema.node_feature(graph.x, "surface").double().numpy()


def knn_edges(pos: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """(2, n·k') int64 edges j → i from each node's k nearest other nodes (k' = min(k, n − 1)).

    Row 0 is the source j, row 1 the destination i; edges are grouped by destination.
    """
    n = len(pos)
    k_eff = min(k, n - 1)
    if k_eff < 1:
        return np.zeros((2, 0), dtype=np.int64)
    _, neighbours = cKDTree(pos).query(pos, k=k_eff + 1)
    neighbours = np.asarray(neighbours).reshape(n, k_eff + 1)
    # drop the node itself; with duplicate coordinates it need not be in column 0
    is_self = neighbours == np.arange(n)[:, None]
    drop_col = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k_eff)
    keep = np.ones_like(neighbours, dtype=bool)
    keep[np.arange(n), drop_col] = False
    src = neighbours[keep].reshape(n, k_eff)
    dst = np.repeat(np.arange(n), k_eff).reshape(n, k_eff)
    return np.stack([src.ravel(), dst.ravel()]).astype(np.int64)


def backbone_atoms(complex_: Complex) -> dict[str, np.ndarray]:
    """N, CA and C coordinates per residue, each (n_residues, 3) Å, NaN where the atom is missing."""
    backbone = {}
    for name in ("N", "CA", "C"):
        rows = np.flatnonzero(complex_.atom_names == name)
        xyz = np.full((complex_.n_residues, 3), np.nan)
        xyz[complex_.residue_index[rows]] = complex_.coords[rows]
        backbone[name] = xyz
    return backbone


def residue_frames(complex_: Complex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per residue: CA position (r, 3) Å, frame rows (n, u, v) as (r, 3, 3), and validity (r,) bool."""
    r = complex_.n_residues
    backbone = backbone_atoms(complex_)
    u = _unit(backbone["N"] - backbone["CA"])
    t = _unit(backbone["C"] - backbone["CA"])
    n = _unit(np.cross(u, t))
    v = np.cross(n, u)
    frames = np.stack([n, u, v], axis=1)
    valid = np.isfinite(frames).all(axis=(1, 2))
    frames[~valid] = 0.0
    ca = backbone["CA"]
    # residues without CA use their atom centroid as the anchor of the relative-position features
    centroid = np.zeros((r, 3))
    np.add.at(centroid, complex_.residue_index, complex_.coords)
    centroid /= np.bincount(complex_.residue_index, minlength=r)[:, None]
    ca = np.where(np.isfinite(ca), ca, centroid)
    return ca, frames, valid


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 1e-6, vectors / norm, np.nan)


def _geometry_features(edges: np.ndarray, node_residue: np.ndarray, ca: np.ndarray, frames: np.ndarray,
                       valid: np.ndarray) -> np.ndarray:
    """(E, 12): B_dst·(CA_src − CA_dst), B_dst·n_src, B_dst·u_src, B_dst·v_src; zero where a frame is missing.

    The values depend only on the two residues, so they are computed once per distinct residue pair.
    """
    n_res = len(ca)
    pair_code = node_residue[edges[0]] * n_res + node_residue[edges[1]]
    pairs, edge_pair = np.unique(pair_code, return_inverse=True)
    src_res, dst_res = pairs // n_res, pairs % n_res
    basis = frames[dst_res]  # (P, 3, 3), rows n, u, v
    relative = np.einsum("pij,pj->pi", basis, ca[src_res] - ca[dst_res])
    oriented = np.einsum("pij,pkj->pki", basis, frames[src_res]).reshape(-1, 9)
    features = np.concatenate([relative, oriented], axis=1)
    features[~(valid[src_res] & valid[dst_res])] = 0.0
    return features[edge_pair]


def _common_edge_features(edges: np.ndarray, chain_index: np.ndarray) -> dict[str, np.ndarray]:
    """``sin_index`` (E,): sin(i − j) of the node indices within a chain (0 between chains), and
    ``same_chain`` (E,): the same-chain flag.

    Between chains, i − j depends on the order of the chains in the file and on how many atoms the
    chains before them have (an OXT more or less): a fingerprint of the file, not of the pose.
    """
    src, dst = edges
    same = chain_index[src] == chain_index[dst]
    return {"sin_index": np.where(same, np.sin((dst - src).astype(np.float64)), 0.0),
            "same_chain": same.astype(np.float64)}


def covalent_flags(edges: np.ndarray, pos: np.ndarray, elements: np.ndarray) -> np.ndarray:
    """(E,) bool: 0.4 Å < d < r_i + r_j + 0.56 Å with single-bond covalent radii by element."""
    radii = np.full(len(elements), 0.77)
    for element, radius in COVALENT_RADII.items():
        radii[elements == element] = radius
    d = np.linalg.norm(pos[edges[0]] - pos[edges[1]], axis=1)
    return (d > 0.4) & (d < radii[edges[0]] + radii[edges[1]] + 0.56)


def featurize(decoy_id: str, complex_: Complex, proximity: np.ndarray, surface_backend: np.ndarray,
              ca: bool = False, k: int = K_NEIGHBOURS) -> GraphBundle:
    """Build the all-atom (default) or Cα k-NN graph. ``proximity`` (n_atoms,) in [0, 1]."""
    proximity = np.asarray(proximity, dtype=np.float64)
    if proximity.shape != (complex_.n_atoms,):
        raise ValueError(f"surface has {proximity.shape[0]} values for {complex_.n_atoms} atoms")
    ca_pos, frames, valid = residue_frames(complex_)
    if ca:
        graph = _ca_graph(complex_, proximity, ca_pos, frames, valid, k)
    else:
        graph = _atom_graph(complex_, proximity, ca_pos, frames, valid, k)
    return GraphBundle(decoy_id, graph, complex_, "ca" if ca else "all_atom", [str(b) for b in surface_backend])


def _atom_graph(c: Complex, proximity, ca_pos, frames, valid, k) -> Data:
    schema = ALL_ATOM_SCHEMA
    one_hot = np.zeros((c.n_atoms, len(ATOM_VOCAB)), dtype=np.float32)
    one_hot[np.arange(c.n_atoms), atom_vocab_index(c.atom_names)] = 1.0
    x = _assemble(schema.node, {"atom_name": one_hot, "surface": proximity.astype(np.float32)}, c.n_atoms)
    edges = knn_edges(c.coords, k)
    edge_attr = _assemble(schema.edge, {
        **_common_edge_features(edges, c.chain_index),
        "geometry": _geometry_features(edges, c.residue_index, ca_pos, frames, valid),
        "covalent": covalent_flags(edges, c.coords, c.elements),
    }, edges.shape[1])
    return _data(x, c.coords, edges, edge_attr, c.residue_index, qa_node=_qa_nodes(c))


def atom_vocab_index(atom_names: np.ndarray) -> np.ndarray:
    """(n,) index of each atom name in ATOM_VOCAB (unknown names → UNX)."""
    names, inverse = np.unique(atom_names, return_inverse=True)
    return np.array([_ATOM_INDEX.get(str(name), _ATOM_INDEX["UNX"]) for name in names], dtype=np.int64)[inverse]


def _qa_nodes(c: Complex) -> np.ndarray:
    """(n_residues,) node that carries each residue's QA value: its CA, else its first atom."""
    first = c.residue_starts
    ca_rows = np.flatnonzero(c.atom_names == "CA")
    node = first.copy()
    node[c.residue_index[ca_rows]] = ca_rows
    return node


def _ca_graph(c: Complex, proximity, ca_pos, frames, valid, k) -> Data:
    ca_rows = np.flatnonzero(c.atom_names == "CA")
    residues = c.residue_index[ca_rows]
    r = c.n_residues
    res_type = np.array([_RESIDUE_INDEX.get(str(n), len(AMINO_ACIDS)) for n in c.res_names[c.residue_starts]])
    schema = CA_SCHEMA
    one_hot = np.zeros((len(ca_rows), len(AMINO_ACIDS) + 1), dtype=np.float32)
    one_hot[np.arange(len(ca_rows)), res_type[residues]] = 1.0
    x = _assemble(schema.node, {
        "residue": one_hot,
        "surface": proximity[ca_rows].astype(np.float32),
        "dihedrals": backbone_dihedral_features(c)[residues].astype(np.float32),
    }, len(ca_rows))
    pos = ca_pos[residues]
    edges = knn_edges(pos, k)
    chain_of_node = c.chain_index[ca_rows]
    edge_attr = _assemble(schema.edge, {
        **_common_edge_features(edges, chain_of_node),
        "geometry": _geometry_features(edges, residues, ca_pos, frames, valid),
    }, edges.shape[1])
    node_of_residue = np.full(r, -1)
    node_of_residue[residues] = np.arange(len(ca_rows))
    return _data(x, pos, edges, edge_attr, residues, qa_node=node_of_residue)


def backbone_dihedral_features(c: Complex) -> np.ndarray:
    """(n_residues, 6) sin/cos of φ, ψ, ω; zeros where a neighbour residue is missing or not bonded."""
    atoms = backbone_atoms(c)
    chain = c.chain_index[c.residue_starts]
    # peptide bond between residue i and i+1: same chain and C(i)–N(i+1) shorter than 2 Å
    bonded = (chain[:-1] == chain[1:]) & (np.linalg.norm(atoms["C"][:-1] - atoms["N"][1:], axis=1) < 2.0)
    nan = np.full((1, 3), np.nan)
    prev_c = np.concatenate([nan, np.where(bonded[:, None], atoms["C"][:-1], np.nan)])
    next_n = np.concatenate([np.where(bonded[:, None], atoms["N"][1:], np.nan), nan])
    next_ca = np.concatenate([np.where(bonded[:, None], atoms["CA"][1:], np.nan), nan])
    angles = np.stack([
        dihedral(prev_c, atoms["N"], atoms["CA"], atoms["C"]),
        dihedral(atoms["N"], atoms["CA"], atoms["C"], next_n),
        dihedral(atoms["CA"], atoms["C"], next_n, next_ca),
    ], axis=1)
    features = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return np.nan_to_num(features, nan=0.0)


def dihedral(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(m,) dihedral angles in radians of the point quadruples (m, 3) each; NaN where undefined."""
    b0, b1, b2 = a - b, c - b, d - c
    b1 = _unit(b1)
    v = b0 - np.sum(b0 * b1, axis=1, keepdims=True) * b1
    w = b2 - np.sum(b2 * b1, axis=1, keepdims=True) * b1
    return np.arctan2(np.sum(np.cross(b1, v) * w, axis=1), np.sum(v * w, axis=1))


def _data(x, pos, edges, edge_attr, node_residue, qa_node) -> Data:
    import torch
    from torch_geometric.data import Data

    return Data(
        x=torch.from_numpy(np.asarray(x, dtype=np.float32)),
        pos=torch.from_numpy(np.asarray(pos, dtype=np.float32)),
        edge_index=torch.from_numpy(edges),
        edge_attr=torch.from_numpy(np.asarray(edge_attr, dtype=np.float32)),
        node_residue=torch.from_numpy(np.asarray(node_residue, dtype=np.int64)),
        qa_node=torch.from_numpy(np.asarray(qa_node, dtype=np.int64)),
    )


def save_graph(bundle: GraphBundle, path: Path) -> None:
    """Save as a plain dict of tensors, lists and strings, loadable with ``torch.load(weights_only=True)``."""
    import torch

    c = bundle.complex
    payload = {
        "format": GRAPH_FORMAT,
        "decoy_id": bundle.decoy_id,
        "kind": bundle.kind,
        "graph": {key: value for key, value in bundle.graph.to_dict().items()},
        "complex": {
            "coords": torch.from_numpy(c.coords),
            **{key: getattr(c, key).tolist() for key in _META_STRINGS},
            **{key: torch.from_numpy(np.asarray(getattr(c, key))) for key in _META_NUMBERS},
        },
        "surface_backend": bundle.surface_backend,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_graph(path: Path) -> GraphBundle:
    """Load a graph saved by :func:`save_graph` without unpickling arbitrary objects."""
    import torch
    from torch_geometric.data import Data

    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != GRAPH_FORMAT:
        raise ValueError(f"{path}: not an egr graph file ({GRAPH_FORMAT})")
    meta = payload["complex"]
    complex_ = Complex(
        coords=meta["coords"].numpy().astype(np.float64),
        **{key: np.array(meta[key], dtype=str) for key in _META_STRINGS},
        **{key: meta[key].numpy() for key in _META_NUMBERS},
    )
    return GraphBundle(payload["decoy_id"], Data(**payload["graph"]), complex_, payload["kind"],
                       list(payload["surface_backend"]))


@dataclass(frozen=True)
class DockingInput:
    """The docking-quality head's input for one structure: the crop graph (:mod:`egr.interface`) and its
    pooling (``pool_node`` (M,), ``pool_interface`` (M,), ``physics`` (G, N_PHYSICS)), as tensors."""

    graph: Data
    pool_node: torch.Tensor
    pool_interface: torch.Tensor
    physics: torch.Tensor


def docking_input(complex_: Complex, proximity: np.ndarray) -> DockingInput:
    """Crop ``complex_`` around its interfaces and featurize the crop as an all-atom graph (same k, same features)."""
    import torch

    crop = interface_crop(complex_)
    part = subset(complex_, crop.atoms)
    graph = featurize("crop", part, np.asarray(proximity, dtype=np.float64)[crop.atoms],
                      np.full(part.n_atoms, "n/a")).graph
    return DockingInput(graph, torch.from_numpy(crop.pool_node), torch.from_numpy(crop.pool_interface),
                        torch.from_numpy(crop.physics))


def batch_docking(inputs: list[DockingInput]) -> dict[str, torch.Tensor]:
    """Concatenate docking inputs into one batch: the keyword arguments of ``EGR.docking_logits`` (node and
    interface indices offset per structure), plus ``owner`` (G,), the structure of each interface."""
    import torch

    nodes = np.cumsum([0] + [d.graph.num_nodes for d in inputs])
    groups = np.cumsum([0] + [len(d.physics) for d in inputs])
    return {
        "x": torch.cat([d.graph.x for d in inputs]),
        "pos": torch.cat([d.graph.pos for d in inputs]),
        "edge_index": torch.cat([d.graph.edge_index + int(nodes[i]) for i, d in enumerate(inputs)], 1),
        "edge_attr": torch.cat([d.graph.edge_attr for d in inputs]),
        "batch": torch.cat([torch.full((d.graph.num_nodes,), i, dtype=torch.long) for i, d in enumerate(inputs)]),
        "pool_node": torch.cat([d.pool_node + int(nodes[i]) for i, d in enumerate(inputs)]),
        "pool_interface": torch.cat([d.pool_interface + int(groups[i]) for i, d in enumerate(inputs)]),
        "physics": torch.cat([d.physics for d in inputs]),
        "owner": torch.cat([torch.full((len(d.physics),), i, dtype=torch.long) for i, d in enumerate(inputs)]),
    }
