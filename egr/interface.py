"""The interface crop that EGR's docking-quality head reads (predicted DockQ, :mod:`egr.model`).

Rigid docking keeps every distance within a chain, so whether a pose is right is decided at its
interfaces. The docking head therefore pools over atoms at them. Training runs EGR's layers over a crop
of the complex around the interfaces only (a CPU epoch over thousands of poses fits in minutes);
inference pools the same atoms (:attr:`InterfaceCrop.pool_rows`) from the full-graph input pass that runs
anyway, which gives the same estimate to within a few thousandths (MODEL_CARD.md):

* **interfaces**: chain pairs with at least one heavy-atom pair closer than :data:`egr.physics.CONTACT_CUTOFF`
  (5 Å); where no pair is in contact, every chain pair (a decoy whose partners do not touch must still
  get a score, and its pooled nodes are then the atoms nearest to the partner);
* **crop**: whole residues with a heavy atom within :data:`CROP_RADIUS` Å of another chain of one of
  those pairs; terminal OXT atoms are left out (whether a docking program writes them says nothing
  about the pose, and it would otherwise be a method fingerprint); at most :data:`MAX_CROP_ATOMS` atoms,
  closest to the partner first;
* **pooled nodes** of interface (a, b): crop atoms of a within :data:`POOL_RADIUS` Å of b and of b within
  :data:`POOL_RADIUS` Å of a; where a side has fewer than :data:`MIN_POOL_ATOMS`, its
  :data:`MIN_POOL_ATOMS` atoms nearest to the partner;
* **physics** per interface: log(1 + contacts < 5 Å) and log(1 + clashes < 3 Å), the counts of
  :mod:`egr.physics`, as two extra inputs of the head.

Everything depends only on inter-atomic distances, chain membership and atom names, so the crop of a
rigidly moved copy, or of the same complex with its chains listed in another order, is the same set of
atoms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from egr.physics import CONTACT_CUTOFF, InterfacePhysics, box_gaps, interface_physics
from egr.structure import Complex

CROP_RADIUS = 10.0  # Å
POOL_RADIUS = 8.0  # Å
MIN_POOL_ATOMS = 32
MAX_CROP_ATOMS = 2500
N_PHYSICS = 2  # physics inputs of the docking head per interface


@dataclass(frozen=True)
class InterfaceCrop:
    """The crop of one complex (module doc).

    atoms: (m,) int rows of the complex in the crop, increasing (so chains and residues stay grouped).
    pool_node: (M,) int, crop-local node of each pooled membership; pool_interface: (M,) int, its interface.
    pairs: (G, 2) int chain indices of each interface (a < b); physics: (G, N_PHYSICS) float32.
    """

    atoms: np.ndarray
    pool_node: np.ndarray
    pool_interface: np.ndarray
    pairs: np.ndarray
    physics: np.ndarray

    @property
    def pool_rows(self) -> np.ndarray:
        """(M,) int rows of the complex of each pooled membership: the pooling on the full graph, whose
        nodes are the complex's atoms in order."""
        return self.atoms[self.pool_node]


def subset(c: Complex, rows: np.ndarray) -> Complex:
    """The atoms ``rows`` (increasing) of ``c`` as a complex of their own, residues and chains renumbered 0.."""
    fields = {name: getattr(c, name)[rows] for name in c.__dataclass_fields__}
    for name in ("residue_index", "chain_index"):
        _, fields[name] = np.unique(fields[name], return_inverse=True)
    return Complex(**fields)


def _nearest_within(c: Complex, rows_of: list[np.ndarray], trees: list[cKDTree], reach: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every usable atom and every other chain with a usable atom within ``reach`` Å of it: (atom row,
    other chain, distance to that chain's nearest usable atom, Å), one entry per (atom, chain).

    Chain pairs whose bounding boxes are farther apart than ``reach`` are skipped, and the searches stop
    at ``reach``, so many-chain complexes do not pay for every ordered chain pair in full."""
    # a chain without usable atoms (OXT only) is an infinite gap away from every other
    gaps = box_gaps(c.coords, rows_of)
    atom, other, dist = [], [], []
    for x, rows in enumerate(rows_of):
        if not len(rows):
            continue
        for y in np.flatnonzero(gaps[x] <= reach):
            if y == x:
                continue
            d, _ = trees[y].query(c.coords[rows], k=1, distance_upper_bound=reach)
            near = np.isfinite(d)
            atom.append(rows[near])
            other.append(np.full(int(near.sum()), y))
            dist.append(d[near])
    if not atom:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(atom), np.concatenate(other), np.concatenate(dist)


def interface_crop(c: Complex) -> InterfaceCrop:
    """The crop of ``c`` (module doc); needs at least two chains."""
    n_chains = int(c.chain_index.max()) + 1
    if n_chains < 2:
        raise ValueError("the docking-quality head needs at least two chains")
    usable = c.atom_names != "OXT"
    rows_of = [np.flatnonzero(usable & (c.chain_index == k)) for k in range(n_chains)]
    physics = interface_physics(subset(c, np.flatnonzero(usable)))  # OXT-free, like the crop
    all_pairs = [(a, b) for a in range(n_chains) for b in range(a + 1, n_chains)]
    pairs = [(a, b) for a, b in all_pairs if physics.contacts[a, b] > 0] or all_pairs
    trees = [cKDTree(c.coords[rows]) for rows in rows_of]
    atom, other, dist = _nearest_within(c, rows_of, trees, max(CROP_RADIUS, POOL_RADIUS))
    chosen_pair = np.zeros((n_chains, n_chains), dtype=bool)
    for a, b in pairs:
        chosen_pair[a, b] = chosen_pair[b, a] = True

    # crop: whole residues with an atom within CROP_RADIUS of a partner of a chosen interface
    closeness = np.full(c.n_atoms, np.inf)
    atom_chain = c.chain_index[atom]
    partner = chosen_pair[atom_chain, other]
    np.minimum.at(closeness, atom[partner], dist[partner])
    residue_close = np.full(c.n_residues, np.inf)
    np.minimum.at(residue_close, c.residue_index, closeness)
    in_crop = usable & (residue_close[c.residue_index] < CROP_RADIUS)
    # the pooled fallback atoms must be in the crop even when the partners are far apart

    def distances_to(y: int, rows: np.ndarray) -> np.ndarray:
        """Exact distance (Å) of each atom ``rows`` to chain y's nearest usable atom."""
        return np.asarray(trees[y].query(c.coords[rows], k=1)[0])

    pool_rows = []
    for a, b in pairs:
        sides = []
        for x, y in ((a, b), (b, a)):
            near = (other == y) & (atom_chain == x) & (dist < POOL_RADIUS)
            chosen = np.sort(atom[near])
            if len(chosen) < MIN_POOL_ATOMS:
                d = distances_to(y, rows_of[x])
                chosen = rows_of[x][np.argsort(d, kind="stable")[:MIN_POOL_ATOMS]]
            sides.append(chosen)
        pool_rows.append(np.concatenate(sides))
    for rows in pool_rows:
        in_crop[rows] = True
    atoms = np.flatnonzero(in_crop)
    if len(atoms) > MAX_CROP_ATOMS:
        # crop atoms beyond the neighbour search's reach are ranked by their exact distance
        far = atoms[~np.isfinite(closeness[atoms])]
        for x in np.unique(c.chain_index[far]):
            mine = far[c.chain_index[far] == x]
            partners = [y for y in range(n_chains) if chosen_pair[x, y]]
            closeness[mine] = np.min([distances_to(y, mine) for y in partners], axis=0)
        keep = np.argsort(closeness[atoms], kind="stable")[:MAX_CROP_ATOMS]
        atoms = np.sort(atoms[keep])
    local = np.full(c.n_atoms, -1)
    local[atoms] = np.arange(len(atoms))
    pool_node, pool_interface = [], []
    for g, rows in enumerate(pool_rows):
        nodes = local[rows]
        nodes = nodes[nodes >= 0]
        pool_node.append(nodes)
        pool_interface.append(np.full(len(nodes), g))
    pairs_array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return InterfaceCrop(atoms=atoms, pool_node=np.concatenate(pool_node).astype(np.int64),
                         pool_interface=np.concatenate(pool_interface).astype(np.int64),
                         pairs=pairs_array, physics=physics_features(physics, pairs_array))


def _without_oxt(c: Complex) -> Complex:
    """``c`` without terminal OXT atoms, like the crop (module doc)."""
    return subset(c, np.flatnonzero(c.atom_names != "OXT"))


def physics_features(physics: InterfacePhysics, pairs: np.ndarray) -> np.ndarray:
    """(G, N_PHYSICS) float32 head inputs of the interfaces ``pairs`` (G, 2): log(1 + contacts), log(1 + clashes)."""
    chosen = (pairs[:, 0], pairs[:, 1])
    return np.stack([np.log1p(physics.contacts[chosen]), np.log1p(physics.clashes[chosen])], 1).astype(np.float32)


def crop_physics(c: Complex, pairs: np.ndarray) -> np.ndarray:
    """The physics inputs of interfaces ``pairs`` (G, 2) at ``c``'s coordinates (OXT-free, as in the crop):
    what the head reads for a structure scored on another structure's crop (a refinement of it)."""
    return physics_features(interface_physics(_without_oxt(c)), pairs)

