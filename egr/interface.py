"""The interface atoms that EGR's docking-quality head pools over (predicted DockQ, :mod:`egr.model`).

Rigid docking keeps every distance within a chain, so whether a pose is right is decided at its
interfaces. The docking head reads the final node features of EGR's own full-graph pass, pooled over the
atoms of each interface, the same pooling in training and at inference:

* **interfaces**: chain pairs with at least one heavy-atom pair closer than :data:`egr.physics.CONTACT_CUTOFF`
  (5 Å); where no pair is in contact, every chain pair (a decoy whose partners do not touch must still
  get a score, and its pooled nodes are then the atoms nearest to the partner);
* **pooled nodes** of interface (a, b): atoms of a within :data:`POOL_RADIUS` Å of b and of b within
  :data:`POOL_RADIUS` Å of a; where a side has fewer than :data:`MIN_POOL_ATOMS`, its
  :data:`MIN_POOL_ATOMS` atoms nearest to the partner. Terminal OXT atoms are never pooled and are left
  out of the distances (whether a docking program writes them says nothing about the pose, and it would
  otherwise be a method fingerprint);
* **physics** per interface: log(1 + contacts < 5 Å) and log(1 + clashes < 3 Å), the counts of
  :mod:`egr.physics` over the OXT-free atoms, as two extra inputs of the head.

Everything depends only on inter-atomic distances, chain membership and atom names, so the pooled atoms of
a rigidly moved copy, or of the same complex with its chains listed in another order, are the same atoms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from egr.physics import InterfacePhysics, interface_physics
from egr.structure import Complex

POOL_RADIUS = 8.0  # Å
MIN_POOL_ATOMS = 32
N_PHYSICS = 2  # physics inputs of the docking head per interface


@dataclass(frozen=True)
class InterfacePool:
    """The pooling of one complex (module doc).

    pool_node: (M,) int atom rows of the complex (= all-atom graph nodes) of each pooled membership;
    pool_interface: (M,) int, its interface. pairs: (G, 2) int chain indices of each interface (a < b);
    physics: (G, N_PHYSICS) float32.
    """

    pool_node: np.ndarray
    pool_interface: np.ndarray
    pairs: np.ndarray
    physics: np.ndarray


def subset(c: Complex, rows: np.ndarray) -> Complex:
    """The atoms ``rows`` (increasing) of ``c`` as a complex of their own, residues and chains renumbered 0.."""
    fields = {name: getattr(c, name)[rows] for name in c.__dataclass_fields__}
    for name in ("residue_index", "chain_index"):
        _, fields[name] = np.unique(fields[name], return_inverse=True)
    return Complex(**fields)


def interface_pool(c: Complex) -> InterfacePool:
    """The pooling of ``c`` (module doc); needs at least two chains."""
    n_chains = int(c.chain_index.max()) + 1
    if n_chains < 2:
        raise ValueError("the docking-quality head needs at least two chains")
    usable = c.atom_names != "OXT"
    rows_of = [np.flatnonzero(usable & (c.chain_index == k)) for k in range(n_chains)]
    physics = interface_physics(subset(c, np.flatnonzero(usable)))
    all_pairs = [(a, b) for a in range(n_chains) for b in range(a + 1, n_chains)]
    pairs = [(a, b) for a, b in all_pairs if physics.contacts[a, b] > 0] or all_pairs
    trees: dict[int, cKDTree] = {}

    def tree(k: int) -> cKDTree:
        if k not in trees:
            trees[k] = cKDTree(c.coords[rows_of[k]])
        return trees[k]

    pool_node, pool_interface = [], []
    for g, (a, b) in enumerate(pairs):
        for x, y in ((a, b), (b, a)):
            rows = rows_of[x]
            if not len(rows) or not len(rows_of[y]):
                continue
            d, _ = tree(y).query(c.coords[rows], k=1, distance_upper_bound=POOL_RADIUS)
            chosen = rows[d < POOL_RADIUS]
            if len(chosen) < MIN_POOL_ATOMS:
                d = np.asarray(tree(y).query(c.coords[rows], k=1)[0])
                chosen = np.sort(rows[np.argsort(d, kind="stable")[:MIN_POOL_ATOMS]])
            pool_node.append(chosen)
            pool_interface.append(np.full(len(chosen), g))
    pairs_array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return InterfacePool(pool_node=np.concatenate(pool_node).astype(np.int64),
                         pool_interface=np.concatenate(pool_interface).astype(np.int64),
                         pairs=pairs_array, physics=physics_features(physics, pairs_array))


def physics_features(physics: InterfacePhysics, pairs: np.ndarray) -> np.ndarray:
    """(G, N_PHYSICS) float32 head inputs of the interfaces ``pairs`` (G, 2): log(1 + contacts), log(1 + clashes)."""
    chosen = (pairs[:, 0], pairs[:, 1])
    return np.stack([np.log1p(physics.contacts[chosen]), np.log1p(physics.clashes[chosen])], 1).astype(np.float32)


def moved_physics(c: Complex, pairs: np.ndarray) -> np.ndarray:
    """The physics inputs of interfaces ``pairs`` (G, 2) at ``c``'s coordinates (OXT-free, as in the pooling):
    what the head reads for a refinement of a structure, whose pooling is the input's."""
    return physics_features(interface_physics(subset(c, np.flatnonzero(c.atom_names != "OXT"))), pairs)
