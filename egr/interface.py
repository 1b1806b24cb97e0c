"""The interface crop that EGR's docking-quality head reads (predicted DockQ, :mod:`egr.model`).

Rigid docking keeps every distance within a chain, so whether a pose is right is decided at its
interfaces. The docking head therefore sees a crop of the complex around them, the same crop in
training and at inference:

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

from egr.physics import CONTACT_CUTOFF, interface_physics
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


def subset(c: Complex, rows: np.ndarray) -> Complex:
    """The atoms ``rows`` (increasing) of ``c`` as a complex of their own, residues and chains renumbered 0.."""
    fields = {name: getattr(c, name)[rows] for name in c.__dataclass_fields__}
    for name in ("residue_index", "chain_index"):
        _, fields[name] = np.unique(fields[name], return_inverse=True)
    return Complex(**fields)


def _distance_to_chain(c: Complex, tree_of: dict[int, cKDTree], chain: int, rows: np.ndarray) -> np.ndarray:
    distances, _ = tree_of[chain].query(c.coords[rows], k=1)
    return np.asarray(distances)


def interface_crop(c: Complex) -> InterfaceCrop:
    """The crop of ``c`` (module doc); needs at least two chains."""
    n_chains = int(c.chain_index.max()) + 1
    if n_chains < 2:
        raise ValueError("the docking-quality head needs at least two chains")
    usable = c.atom_names != "OXT"
    rows_of = [np.flatnonzero(usable & (c.chain_index == k)) for k in range(n_chains)]
    tree_of = {k: cKDTree(c.coords[rows]) for k, rows in enumerate(rows_of)}
    all_pairs = [(a, b) for a in range(n_chains) for b in range(a + 1, n_chains)]
    # nearest distance of every usable atom of a to chain b, for every ordered pair
    nearest = {(a, b): _distance_to_chain(c, tree_of, b, rows_of[a]) for a in range(n_chains)
               for b in range(n_chains) if a != b}
    physics = interface_physics(subset(c, np.flatnonzero(usable)))  # OXT-free, like the crop
    pairs = [(a, b) for a, b in all_pairs if physics.contacts[a, b] > 0] or all_pairs

    # crop: whole residues with an atom within CROP_RADIUS of a partner of a chosen interface
    closeness = np.full(c.n_atoms, np.inf)
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            closeness[rows_of[x]] = np.minimum(closeness[rows_of[x]], nearest[(x, y)])
    residue_close = np.full(c.n_residues, np.inf)
    np.minimum.at(residue_close, c.residue_index, closeness)
    in_crop = usable & (residue_close[c.residue_index] < CROP_RADIUS)
    # the pooled fallback atoms must be in the crop even when the partners are far apart
    pool_rows = []
    for a, b in pairs:
        sides = []
        for x, y in ((a, b), (b, a)):
            d = nearest[(x, y)]
            chosen = rows_of[x][d < POOL_RADIUS]
            if len(chosen) < MIN_POOL_ATOMS:
                chosen = rows_of[x][np.argsort(d, kind="stable")[:MIN_POOL_ATOMS]]
            sides.append(chosen)
        pool_rows.append(np.concatenate(sides))
    for rows in pool_rows:
        in_crop[rows] = True
    atoms = np.flatnonzero(in_crop)
    if len(atoms) > MAX_CROP_ATOMS:
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
    chosen = tuple(np.array(pairs).T)
    features = np.stack([np.log1p(physics.contacts[chosen]), np.log1p(physics.clashes[chosen])], 1).astype(np.float32)
    return InterfaceCrop(atoms=atoms, pool_node=np.concatenate(pool_node).astype(np.int64),
                         pool_interface=np.concatenate(pool_interface).astype(np.int64),
                         pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2), physics=features)

