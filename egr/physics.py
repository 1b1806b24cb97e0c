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


def inter_chain_pairs(coords: np.ndarray, chain_index: np.ndarray, cutoff: float) -> np.ndarray:
    """(2, P) int atom pairs i < j of different chains closer than ``cutoff`` Å; coords (n, 3) Å."""
    pairs = cKDTree(coords).query_pairs(cutoff, output_type="ndarray").T
    if pairs.size == 0:
        return np.zeros((2, 0), dtype=np.int64)
    pairs = pairs[:, chain_index[pairs[0]] != chain_index[pairs[1]]]
    # query_pairs counts d ≤ cutoff; the definition is strict
    d = np.linalg.norm(coords[pairs[0]] - coords[pairs[1]], axis=1)
    return pairs[:, d < cutoff].astype(np.int64)


def interface_physics(c: Complex) -> InterfacePhysics:
    """Contact and clash counts per chain pair of ``c`` (see :class:`InterfacePhysics`)."""
    n_chains = int(c.chain_index.max()) + 1 if c.n_atoms else 0
    pairs = inter_chain_pairs(c.coords, c.chain_index, CONTACT_CUTOFF)
    d = np.linalg.norm(c.coords[pairs[0]] - c.coords[pairs[1]], axis=1)
    counts = []
    for selected in (np.ones(len(d), bool), d < CLASH_CUTOFF):
        a, b = c.chain_index[pairs[0, selected]], c.chain_index[pairs[1, selected]]
        m = np.zeros((n_chains, n_chains), dtype=np.int64)
        np.add.at(m, (a, b), 1)
        counts.append(m + m.T)
    return InterfacePhysics(contacts=counts[0], clashes=counts[1])
