"""Sequence-aware train/validation/test split of decoy sets (``egr split``).

Every chain of every native is clustered with MMseqs2 (``easy-cluster``, by default ≥ 30 % identity
over ≥ 50 % coverage). Targets that share a cluster, directly or through a chain of other targets,
form one connected group, and a group goes to one split as a whole, so no cluster spans two splits:
no chain in one split has > 30 % identity to a chain in another (docs/design.md, "EGR, precisely",
its Training paragraph). Groups are dealt out in a seeded random order to the split furthest below its
target fraction of targets.

The same protein under two set names (bm5/1AK4 and haddock/1AK4) lands in one group automatically.

Data layout (that of the data set ``shared/data``, beside this repository; ``tests/data/pairs`` is a
small copy in the same layout, tests/data/SOURCES.md): ``<root>/<set>/<target>/native/<target>.pdb.gz``.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from egr.io import atomic_write_text

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)
SPLITS_HEADER = ("target", "set", "split", "group", "clusters")


class SplitError(RuntimeError):
    """The split cannot be made (no natives, MMseqs2 missing or failing); one-line message."""


@dataclass(frozen=True)
class ChainSequence:
    """One protein chain of a native: its target key, chain ID and one-letter sequence (X = unknown)."""

    set_name: str
    target: str
    chain: str
    sequence: str


@dataclass(frozen=True)
class TargetSplit:
    """One row of ``splits.tsv``: a target, its split, its connected group and the clusters of its chains."""

    target: str
    set_name: str
    split: str
    group: int
    clusters: tuple[str, ...]  # names of the MMseqs2 representative chains, sorted


def native_paths(root: Path, sets: Sequence[str]) -> list[tuple[str, str, Path]]:
    """(set, target, native file) for every target of ``sets`` under ``root``, sorted by set then target."""
    found = []
    for set_name in sets:
        folder = Path(root) / set_name
        if not folder.is_dir():
            raise SplitError(f"{folder}: no such set folder")
        for native_dir in sorted(folder.glob("*/native")):
            files = sorted(native_dir.glob("*.pdb*")) + sorted(native_dir.glob("*.cif*"))
            if files:
                found.append((set_name, native_dir.parent.name, files[0]))
    if not found:
        raise SplitError(f"no natives found under {root} for sets {', '.join(sets)}")
    return found


def chain_sequences(set_name: str, target: str, native: Path) -> list[ChainSequence]:
    """One-letter sequences of the amino-acid chains of ``native`` (model 1; waters and ligands skipped).

    A chain ID that occurs in several pieces (split by TER or ligands) gives one sequence per ID.
    """
    structure = gemmi.read_structure(str(native))
    pieces: dict[str, list[str]] = {}
    for chain in structure[0]:
        codes = [gemmi.find_tabulated_residue(r.name) for r in chain]
        letters = [c.one_letter_code.upper() if c.one_letter_code.strip() else "X"
                   for c in codes if c is not None and c.is_amino_acid()]
        pieces.setdefault(chain.name, []).extend(letters)
    return [ChainSequence(set_name, target, chain, "".join(seq)) for chain, seq in pieces.items() if seq]


def mmseqs_clusters(
    chains: Sequence[ChainSequence],
    min_seq_id: float = 0.3,
    coverage: float = 0.5,
    mmseqs: str = "mmseqs",
    threads: int = 1,
    workdir: Path | None = None,
) -> np.ndarray:
    """Cluster chains with ``mmseqs easy-cluster``; returns (n_chains,) int, the row of each chain's
    cluster representative in ``chains``.

    Chains are written as ``>c<row>`` so no chain or target name can upset MMseqs2's header parsing.
    Raises SplitError when the binary is missing or fails.
    """
    exe = shutil.which(mmseqs)
    if exe is None:
        raise SplitError(f"MMseqs2 executable {mmseqs!r} not found (Debian: apt-get install mmseqs2)")
    fasta = "".join(f">c{i}\n{c.sequence}\n" for i, c in enumerate(chains))
    with tempfile.TemporaryDirectory(prefix="egr-mmseqs-", dir=workdir) as scratch:
        scratch_path = Path(scratch)
        (scratch_path / "seqs.fasta").write_text(fasta)
        command = [exe, "easy-cluster", "seqs.fasta", "clu", "tmp", "--min-seq-id", str(min_seq_id),
                   "-c", str(coverage), "--threads", str(threads), "-v", "1"]
        done = subprocess.run(command, cwd=scratch_path, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SplitError(f"mmseqs easy-cluster failed (exit {done.returncode}): {tail[0]}")
        table = (scratch_path / "clu_cluster.tsv").read_text()
    pairs = np.loadtxt(io.StringIO(table.replace("c", "")), dtype=np.int64, ndmin=2)  # representative, member
    representative = np.full(len(chains), -1, dtype=np.int64)
    representative[pairs[:, 1]] = pairs[:, 0]
    if (representative < 0).any():
        raise SplitError(f"mmseqs left {int((representative < 0).sum())} chain(s) out of its clustering")
    return representative


def connected_groups(target_of_chain: np.ndarray, cluster_of_chain: np.ndarray, n_targets: int) -> np.ndarray:
    """(n_targets,) group label: targets linked through any shared cluster share a label.

    The bipartite graph targets ↔ clusters (one edge per chain) is split into connected components.
    Labels are 0..n_groups-1 in order of each group's first target.
    """
    clusters, cluster_index = np.unique(cluster_of_chain, return_inverse=True)
    size = n_targets + len(clusters)
    edges = coo_matrix((np.ones(len(target_of_chain)), (target_of_chain, n_targets + cluster_index)),
                       shape=(size, size))
    _, labels = connected_components(edges, directed=False)
    target_labels = labels[:n_targets]
    # renumber by first appearance so labels do not depend on scipy's internal numbering
    _, first, inverse = np.unique(target_labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


def assign_groups(group_of_target: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """(n_targets,) split index (into :data:`SPLITS`) such that whole groups go to one split.

    Groups are visited in a seeded random order; each goes to the split with the largest deficit
    (target fraction × targets dealt so far, including this group, minus the split's count).
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (len(SPLITS),) or (fractions < 0).any() or fractions.sum() <= 0:
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers, got {fractions.tolist()}")
    fractions = fractions / fractions.sum()
    sizes = np.bincount(group_of_target)
    order = np.random.default_rng(seed).permutation(len(sizes))
    counts = np.zeros(len(SPLITS))
    split_of_group = np.empty(len(sizes), dtype=np.int64)
    dealt = 0
    for group in order:  # one step per group: the deficit depends on all earlier choices
        dealt += sizes[group]
        choice = int(np.argmax(fractions * dealt - counts))
        split_of_group[group] = choice
        counts[choice] += sizes[group]
    return split_of_group[group_of_target]


def make_splits(
    root: Path,
    sets: Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    min_seq_id: float = 0.3,
    coverage: float = 0.5,
    mmseqs: str = "mmseqs",
    threads: int = 1,
) -> list[TargetSplit]:
    """Cluster all native chains of ``sets`` under ``root`` and split their targets (see module doc)."""
    targets = native_paths(root, sets)
    chains = [seq for set_name, target, path in targets for seq in chain_sequences(set_name, target, path)]
    key_index = {(s, t): i for i, (s, t, _) in enumerate(targets)}
    target_of_chain = np.array([key_index[(c.set_name, c.target)] for c in chains], dtype=np.int64)
    representative = mmseqs_clusters(chains, min_seq_id, coverage, mmseqs, threads)
    groups = connected_groups(target_of_chain, representative, len(targets))
    split_index = assign_groups(groups, fractions, seed)
    names = np.array([f"{c.set_name}/{c.target}/{c.chain}" for c in chains])
    rows = []
    for i, (set_name, target, _) in enumerate(targets):
        clusters = tuple(sorted(set(names[representative[target_of_chain == i]].tolist())))
        rows.append(TargetSplit(target, set_name, SPLITS[split_index[i]], int(groups[i]), clusters))
    return rows


def write_splits(rows: Sequence[TargetSplit], path: Path) -> None:
    """Write ``splits.tsv``: target, set, split, group, clusters (comma-separated representative chains)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(SPLITS_HEADER)
    writer.writerows((r.target, r.set_name, r.split, r.group, ",".join(r.clusters)) for r in rows)
    atomic_write_text(path, buffer.getvalue())


def read_splits(path: Path) -> list[TargetSplit]:
    """Read a ``splits.tsv`` written by :func:`write_splits`."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if tuple(reader.fieldnames or ()) != SPLITS_HEADER:
            raise SplitError(f"{path}: not a splits table (header {reader.fieldnames})")
        return [TargetSplit(r["target"], r["set"], r["split"], int(r["group"]), tuple(r["clusters"].split(",")))
                for r in reader]


def split_of_targets(path: Path) -> dict[tuple[str, str], str]:
    """The split of every (set, target) of the ``splits.tsv`` at ``path``."""
    return {(row.set_name, row.target): row.split for row in read_splits(path)}


def split_summary(rows: Sequence[TargetSplit]) -> dict[str, dict[str, int]]:
    """Targets per split and set, e.g. ``{"train": {"bm5": 80, "dips": 15}, ...}``."""
    summary: dict[str, dict[str, int]] = {name: {} for name in SPLITS}
    for r in rows:
        summary[r.split][r.set_name] = summary[r.split].get(r.set_name, 0) + 1
    return summary
