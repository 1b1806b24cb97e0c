"""Native-free physics summaries of a complex's interfaces, and the contacts−clashes reference ranker.

The reference ranker is the simplest docking score a user could compute by hand:

    contacts_clashes = (inter-chain heavy-atom pairs closer than 5 Å) − 10 × (inter-chain pairs closer than 3 Å)

over the heavy atoms of the cleaned complex (:mod:`egr.structure`: amino-acid residues, no H, first
model), summed over all pairs of chains. Distances are strict (< 5 Å, < 3 Å). Higher is better. A
3 Å pair is also a 5 Å pair, so a clashing pair counts 1 − 10 = −9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from egr.structure import Complex

CONTACT_CUTOFF = 5.0  # Å
CLASH_CUTOFF = 3.0  # Å
CLASH_WEIGHT = 10.0


@dataclass(frozen=True)
class InterfacePhysics:
    """Inter-chain atom-pair counts of one complex.

    contacts, clashes: (n_chains, n_chains) int, symmetric, zero diagonal: heavy-atom pairs of two chains
    closer than :data:`CONTACT_CUTOFF` / :data:`CLASH_CUTOFF` Å.
    """

    contacts: np.ndarray
    clashes: np.ndarray

    @property
    def total_contacts(self) -> int:
        """Contacts summed over all chain pairs, each pair of chains counted once."""
        return int(np.triu(self.contacts, 1).sum())

    @property
    def total_clashes(self) -> int:
        return int(np.triu(self.clashes, 1).sum())

    @property
    def contacts_clashes(self) -> float:
        """The reference score (module doc), over all chain pairs."""
        return float(self.total_contacts - CLASH_WEIGHT * self.total_clashes)


def box_gaps(coords: np.ndarray, rows_of: list[np.ndarray]) -> np.ndarray:
    """(k, k) distance (Å) between the bounding boxes of the atom sets ``rows_of`` (rows of ``coords`` (n, 3)):
    0 where boxes overlap, inf where a set is empty. No atom pair of two sets is closer than their gap."""
    low = np.array([coords[rows].min(0) if len(rows) else np.full(3, np.inf) for rows in rows_of]).reshape(-1, 3)
    high = np.array([coords[rows].max(0) if len(rows) else np.full(3, -np.inf) for rows in rows_of]).reshape(-1, 3)
    apart = np.maximum(low[None, :, :] - high[:, None, :], low[:, None, :] - high[None, :, :])
    return np.linalg.norm(np.maximum(0.0, apart), axis=2)


def interface_physics(c: Complex) -> InterfacePhysics:
    """Contact and clash counts per chain pair of ``c`` (see :class:`InterfacePhysics`).

    Only pairs of chains whose bounding boxes come within the contact cutoff are searched, chain tree
    against chain tree, so intra-chain neighbours (most pairs within 5 Å) are never listed."""
    n_chains = int(c.chain_index.max()) + 1 if c.n_atoms else 0
    contacts = np.zeros((n_chains, n_chains), dtype=np.int64)
    clashes = np.zeros((n_chains, n_chains), dtype=np.int64)
    rows_of = [np.flatnonzero(c.chain_index == k) for k in range(n_chains)]
    trees: dict[int, cKDTree] = {}
    for a, b in zip(*np.nonzero(np.triu(box_gaps(c.coords, rows_of) < CONTACT_CUTOFF, 1))):
        for k in (a, b):
            if k not in trees:
                trees[k] = cKDTree(c.coords[rows_of[k]])
        # sparse_distance_matrix keeps d ≤ cutoff; the definition is strict
        d = trees[a].sparse_distance_matrix(trees[b], CONTACT_CUTOFF, output_type="ndarray")["v"]
        contacts[a, b] = contacts[b, a] = int(np.sum(d < CONTACT_CUTOFF))
        clashes[a, b] = clashes[b, a] = int(np.sum(d < CLASH_CUTOFF))
    return InterfacePhysics(contacts=contacts, clashes=clashes)
