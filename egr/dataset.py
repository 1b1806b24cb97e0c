"""Training data: decoy graphs with per-atom native targets and LDDT-Cα labels (``egr prepare``).

For every decoy of ``<root>/<set>/<target>/decoys/`` with its ``native/`` structure:

1. both files are ingested like any decoy (:func:`egr.structure.read_decoy`: heavy atoms of amino-acid
   residues only). Hydrogens are what most clearly reveals the docking method ("Method fingerprints"
   in the data set's SOURCES.md, ``shared/data/SOURCES.md`` beside this repository, not in it), and
   ingestion removes them; B-factors and occupancies, the other fingerprints, are
   kept in the :class:`~egr.structure.Complex` but no node or edge feature reads them;
2. the cleaned decoy is written to a scratch PDB and scored with DockQ against the native
   (:func:`egr.metrics.dockq_scores`); this gives the input's DockQ on exactly the atoms the model sees
   and DockQ's best chain mapping, which resolves homodimer symmetry;
3. residues are paired by that chain mapping and a global sequence alignment per chain pair
   (:func:`egr.metrics.residue_correspondence`), never by residue numbers, which differ between
   decoys and natives (ATTRACT renumbers 1..N, HADDOCK uses 9001+ ...);
4. atoms are paired by name within paired residues (backbone N, CA, C, O and CB only where the residue
   types differ, e.g. a point mutation); symmetric side-chain atoms (ASP, GLU, PHE, TYR, ARG) take the
   naming closer to the decoy;
5. the native is superimposed onto the decoy (Kabsch on the paired Cα atoms), so targets live in the
   decoy's frame and the model learns a refinement, not a global move;
6. per-residue LDDT-Cα of the decoy against the native is stored as a label, together with the
   native Cα pairs within the inclusion radius, so the LDDT-Cα of any refined structure can be
   computed in the training loop (:func:`lddt_ca_torch`).

Each decoy gives two files under ``<cache>/<set>/``: ``<decoy_id>.graph.pt`` (:func:`egr.graph.save_graph`)
and ``<decoy_id>.targets.pt`` (a plain dict of tensors, strings and numbers); both load with
``torch.load(weights_only=True)``. ``<cache>/index.tsv`` lists the prepared decoys.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import Data

from egr.graph import featurize, load_graph, save_graph
from egr.io import atomic_write_bytes, atomic_write_table
from egr.jobs import run_jobs
from egr.metrics import (LDDT_INCLUSION_RADIUS, LDDT_THRESHOLDS, Residue, ResidueCorrespondence, dockq_scores,
                         lddt_ca, residue_correspondence)
from egr.split import split_of_targets
from egr.structure import Complex, kabsch, read_decoy, sanitize_id, write_pdb
from egr.surface import compute_surface

TARGETS_FORMAT = "egr-train-targets/1"
INDEX_HEADER = ("set", "target", "decoy_id", "n_atoms", "n_matched", "dockq", "ca_rmsd", "graph", "targets")
BACKBONE_CB = ("N", "CA", "C", "O", "CB")
# Atoms whose names are interchangeable by symmetry; each residue is flipped as a whole (PHE/TYR ring flips
# swap both pairs together).
SYMMETRIC_ATOMS: dict[str, tuple[tuple[str, str], ...]] = {
    "ASP": (("OD1", "OD2"),),
    "GLU": (("OE1", "OE2"),),
    "PHE": (("CD1", "CD2"), ("CE1", "CE2")),
    "TYR": (("CD1", "CD2"), ("CE1", "CE2")),
    "ARG": (("NH1", "NH2"),),
}


@dataclass(frozen=True)
class DecoyPair:
    """A decoy file and its native, with the set and target they belong to."""

    set_name: str
    target: str
    decoy_id: str
    decoy: Path
    native: Path


@dataclass(frozen=True)
class AtomCorrespondence:
    """Decoy atoms paired with native atoms.

    native_atom: (n_decoy_atoms,) int, row of the paired native atom, −1 where none.
    native_residue: (n_decoy_residues,) int, the paired native residue (index in the native Complex), −1 where none.
    decoy_residue_of_row: (m,) int, for each row of the residue correspondence (native residues with a
        Cα), the paired decoy residue, −1 where none.
    chain_map: native chain ID → decoy chain ID (DockQ's best mapping).
    """

    native_atom: np.ndarray
    native_residue: np.ndarray
    decoy_residue_of_row: np.ndarray
    chain_map: dict[str, str]


@dataclass(frozen=True)
class Example:
    """One prepared decoy, ready for the training loop (tensors on CPU).

    graph: the EGR input graph (x, pos, edge_index, edge_attr, node_residue, qa_node).
    target_pos: (n_atoms, 3) float32 Å, native coordinates in the decoy's frame (0 where unpaired).
    target_mask: (n_atoms,) bool, True where the atom has a native partner.
    ca_node: (n_residues,) long, graph node of each residue's Cα, −1 where the residue has no Cα.
    lddt_pairs: (2, P) long, residue pairs (decoy indices, both paired with a native Cα) within the
        inclusion radius in the native; lddt_native_dist: (P,) float32 Å, their native distance.
    lddt_total: (n_residues,) float32, native pairs per residue, including pairs to native residues the
        decoy lacks (never preserved, as in :func:`egr.metrics.lddt_ca`).
    lddt_decoy: (n_residues,) float32, LDDT-Cα of the input decoy, NaN where undefined.
    dockq: DockQ of the (cleaned) input decoy. meta: set, target, decoy_id, native path, chain map.
    """

    graph: Data
    target_pos: torch.Tensor
    target_mask: torch.Tensor
    ca_node: torch.Tensor
    lddt_pairs: torch.Tensor
    lddt_native_dist: torch.Tensor
    lddt_total: torch.Tensor
    lddt_decoy: torch.Tensor
    dockq: float
    meta: dict
    complex: Complex


def find_pairs(root: Path, sets: Sequence[str]) -> list[DecoyPair]:
    """Every (decoy, native) of ``sets`` under ``root`` in the ``<set>/<target>/decoys|native`` layout."""
    pairs = []
    for set_name in sets:
        for target_dir in sorted(p for p in (Path(root) / set_name).iterdir() if p.is_dir()):
            natives = sorted((target_dir / "native").glob("*.pdb*")) + sorted((target_dir / "native").glob("*.cif*"))
            if not natives:
                continue
            for decoy in sorted((target_dir / "decoys").glob("*")):
                pairs.append(DecoyPair(set_name, target_dir.name, sanitize_id(decoy), decoy, natives[0]))
    return pairs


def split_pairs(root: Path, splits_file: Path, split_names: Sequence[str], sets: Sequence[str]) -> list[DecoyPair]:
    """The pairs of :func:`find_pairs` whose target ``splits_file`` (``egr split``) puts in one of
    ``split_names``; targets the splits file does not list are left out."""
    split_of = split_of_targets(splits_file)
    return [pair for pair in find_pairs(root, sets) if split_of.get((pair.set_name, pair.target)) in split_names]


def _lookup(keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(len(keys),) index of each key in ``table`` (first occurrence), −1 where absent."""
    if len(table) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(table, kind="stable")
    sorted_table = table[order]
    where = np.clip(np.searchsorted(sorted_table, keys), 0, len(table) - 1)
    return np.where(sorted_table[where] == keys, order[where], -1)


def _residue_keys(chains: np.ndarray, numbers: np.ndarray, icodes: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(np.char.add(np.char.add(chains.astype(str), "|"), numbers.astype(str)), "|"),
                       icodes.astype(str))


def _atom_keys(residue: np.ndarray, names: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(residue.astype(str), ":"), names.astype(str))


def pair_atoms(decoy: Complex, native: Complex, pairing: ResidueCorrespondence,
               chain_map: dict[str, str]) -> AtomCorrespondence:
    """Pair decoy atoms with native atoms: residues as ``pairing`` aligned them, then atoms by name.

    ``pairing`` comes from :func:`egr.metrics.residue_correspondence` on a file holding exactly
    ``decoy``'s residues (e.g. written with :func:`egr.structure.write_pdb`) and the native file
    ``native`` was read from; ``chain_map`` is native → decoy chain ID. Symmetric side-chain names are
    not resolved here (see :func:`resolve_symmetry`).
    """
    d_starts, n_starts = decoy.residue_starts, native.residue_starts
    decoy_res_keys = _residue_keys(decoy.chain_ids[d_starts], decoy.res_seq[d_starts], decoy.ins_codes[d_starts])
    native_res_keys = _residue_keys(native.chain_ids[n_starts], native.res_seq[n_starts], native.ins_codes[n_starts])
    # correspondence rows → native Complex residues; correspondence model residues → decoy Complex residues
    row_to_native = _lookup(_keys_of(pairing.native_residues), native_res_keys)
    model_to_decoy = _lookup(_keys_of(pairing.model_residues), decoy_res_keys)
    aligned = (model_to_decoy >= 0) & (pairing.model_row >= 0)
    native_residue = np.full(decoy.n_residues, -1, dtype=np.int64)
    native_residue[model_to_decoy[aligned]] = row_to_native[pairing.model_row[aligned]]
    decoy_residue_of_row = np.full(len(pairing.native_residues), -1, dtype=np.int64)
    decoy_residue_of_row[pairing.model_row[aligned]] = model_to_decoy[aligned]

    atom_native_res = native_residue[decoy.residue_index]
    native_names = native.res_names[n_starts][np.clip(atom_native_res, 0, None)]
    same_type = (atom_native_res >= 0) & (decoy.res_names == native_names)
    eligible = (atom_native_res >= 0) & (same_type | np.isin(decoy.atom_names, BACKBONE_CB))
    found = _lookup(_atom_keys(atom_native_res, decoy.atom_names), _atom_keys(native.residue_index, native.atom_names))
    return AtomCorrespondence(np.where(eligible, found, -1), native_residue, decoy_residue_of_row, dict(chain_map))


def _keys_of(residues: Sequence[Residue]) -> np.ndarray:
    return _residue_keys(np.array([r.chain for r in residues], dtype=str),
                         np.array([r.resseq for r in residues], dtype=np.int64),
                         np.array([r.icode for r in residues], dtype=str))


def symmetric_partner(c: Complex) -> np.ndarray:
    """(n_atoms,) row of each atom's symmetry partner in the same residue (:data:`SYMMETRIC_ATOMS`), −1 if none."""
    swap = {(res, a): b for res, pairs in SYMMETRIC_ATOMS.items() for x, y in pairs for a, b in ((x, y), (y, x))}
    pair_keys = np.array([f"{r}:{a}" for r, a in swap], dtype=str)
    partner_names = np.array(list(swap.values()), dtype=str)
    hit = _lookup(np.char.add(np.char.add(c.res_names, ":"), c.atom_names), pair_keys)
    wanted = np.where(hit >= 0, partner_names[np.clip(hit, 0, None)], "")
    partner = _lookup(_atom_keys(c.residue_index, wanted), _atom_keys(c.residue_index, c.atom_names))
    return np.where(hit >= 0, partner, -1)


def resolve_symmetry(decoy: Complex, native_atom: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Swap the native partners of symmetric atoms per residue where the swapped naming is closer.

    target: (n_native_atoms, 3) native coordinates already in the decoy frame. Returns the new
    ``native_atom`` (n_decoy_atoms,). Only atoms whose partner is paired too take part in (and follow)
    the decision of their residue.
    """
    partner = symmetric_partner(decoy)
    has = (partner >= 0) & (native_atom >= 0)
    has &= np.where(has, native_atom[np.clip(partner, 0, None)] >= 0, False)
    rows = np.flatnonzero(has)
    own = target[native_atom[rows]]
    other = target[native_atom[partner[rows]]]
    x = decoy.coords[rows]
    gain = np.sum((x - own) ** 2, axis=1) - np.sum((x - other) ** 2, axis=1)
    residue_gain = np.bincount(decoy.residue_index[rows], weights=gain, minlength=decoy.n_residues)
    flip = np.zeros(len(native_atom), dtype=bool)
    flip[rows] = residue_gain[decoy.residue_index[rows]] > 0
    swapped = native_atom.copy()
    swapped[flip] = native_atom[partner[flip]]
    return swapped


def lddt_pairs(native_ca: np.ndarray, decoy_residue_of_row: np.ndarray, n_decoy_residues: int,
               inclusion_radius: float = LDDT_INCLUSION_RADIUS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Native Cα pairs for LDDT-Cα in decoy residue indices.

    native_ca: (m, 3) Å native Cα of the paired native chains; decoy_residue_of_row: (m,) decoy residue
    paired with each row, −1 where the decoy lacks it. Returns pairs (2, P) between residues both in
    the decoy, their native distances (P,) Å, and the count of all native pairs per decoy residue
    (n_decoy_residues,), pairs to residues missing from the decoy included.
    """
    pairs = cKDTree(native_ca).query_pairs(inclusion_radius, output_type="ndarray").reshape(-1, 2)
    i, j = decoy_residue_of_row[pairs[:, 0]], decoy_residue_of_row[pairs[:, 1]]
    total = np.zeros(n_decoy_residues)
    np.add.at(total, i[i >= 0], 1.0)
    np.add.at(total, j[j >= 0], 1.0)
    both = (i >= 0) & (j >= 0)
    distance = np.linalg.norm(native_ca[pairs[both, 0]] - native_ca[pairs[both, 1]], axis=1)
    return np.stack([i[both], j[both]]), distance, total


def lddt_ca_torch(ca: torch.Tensor, pairs: torch.Tensor, native_dist: torch.Tensor, total: torch.Tensor,
                  thresholds: Sequence[float] = LDDT_THRESHOLDS) -> torch.Tensor:
    """Per-residue LDDT-Cα of Cα coordinates ``ca`` (r, 3) Å against stored native pairs (see :class:`Example`).

    Same definition as :func:`egr.metrics.lddt_ca` (thresholds inclusive); (r,) values, NaN where a
    residue has no native pair. Hard thresholds: the value carries no gradient to ``ca``; it is the
    label the QA head learns, like AlphaFold's pLDDT target.
    """
    model_dist = torch.linalg.vector_norm(ca[pairs[0]] - ca[pairs[1]], dim=1)
    limits = torch.as_tensor(thresholds, dtype=ca.dtype, device=ca.device)
    preserved = ((model_dist - native_dist).abs().unsqueeze(1) <= limits).to(ca.dtype).mean(1)
    kept = torch.zeros_like(total).index_add(0, pairs[0], preserved).index_add(0, pairs[1], preserved)
    return torch.where(total > 0, kept / total.clamp(min=1), torch.full_like(total, float("nan")))


def build_targets(decoy: Complex, native: Complex, decoy_file: Path, native_file: Path,
                  chain_map: dict[str, str]) -> dict:
    """Targets and labels of one decoy (module doc, steps 3-6) as a dict of numpy arrays (see :class:`Example`)."""
    pairing = residue_correspondence(decoy_file, native_file, chain_map)
    corr = pair_atoms(decoy, native, pairing, chain_map)
    is_ca = decoy.atom_names == "CA"
    ca_pairs = np.flatnonzero(is_ca & (corr.native_atom >= 0))
    if len(ca_pairs) < 3:
        raise ValueError(f"only {len(ca_pairs)} Cα atoms paired with the native")
    rotation, shift = kabsch(native.coords[corr.native_atom[ca_pairs]], decoy.coords[ca_pairs])
    native_in_decoy = native.coords @ rotation.T + shift
    native_atom = resolve_symmetry(decoy, corr.native_atom, native_in_decoy)
    mask = native_atom >= 0
    target = np.where(mask[:, None], native_in_decoy[np.clip(native_atom, 0, None)], 0.0)

    ca_node = np.full(decoy.n_residues, -1, dtype=np.int64)
    ca_node[decoy.residue_index[is_ca]] = np.flatnonzero(is_ca)
    # rows whose decoy residue has a Cα take part in LDDT-Cα; the others count as missing from the model
    row = np.where(corr.decoy_residue_of_row >= 0, ca_node[np.clip(corr.decoy_residue_of_row, 0, None)], -1)
    decoy_of_row = np.where(row >= 0, corr.decoy_residue_of_row, -1)
    pairs, native_dist, total = lddt_pairs(pairing.native_ca, decoy_of_row, decoy.n_residues)

    # the decoy's label comes from the scoring module's own function, on the same rows
    present = decoy_of_row >= 0
    row_ca = np.full((len(decoy_of_row), 3), np.nan)
    row_ca[present] = decoy.coords[ca_node[decoy_of_row[present]]]
    lddt_decoy = np.full(decoy.n_residues, np.nan)
    lddt_decoy[decoy_of_row[present]] = lddt_ca(row_ca, pairing.native_ca, present)[present]
    ca_rmsd = float(np.sqrt(np.mean(np.sum((decoy.coords[ca_pairs] - target[ca_pairs]) ** 2, axis=1))))
    return {
        "target_pos": target.astype(np.float32), "target_mask": mask, "ca_node": ca_node,
        "lddt_pairs": pairs.astype(np.int64), "lddt_native_dist": native_dist.astype(np.float32),
        "lddt_total": total.astype(np.float32), "lddt_decoy": lddt_decoy.astype(np.float32),
        "ca_rmsd": ca_rmsd,
    }


def prepare_pair(pair: DecoyPair, cache: Path, surface_backend: str = "auto") -> dict:
    """Prepare one decoy (graph + targets files under ``cache/<set>/``); returns its index row.

    Raises IngestError, ScoringError or ValueError with a one-line reason when the pair is unusable.
    """
    began = time.perf_counter()
    decoy, _ = read_decoy(pair.decoy)
    native, _ = read_decoy(pair.native)
    with tempfile.TemporaryDirectory(prefix="egr-prepare-") as scratch:
        clean = Path(scratch) / f"{pair.decoy_id}.pdb"
        write_pdb(decoy, clean)
        scores = dockq_scores(clean, pair.native)
        targets = build_targets(decoy, native, clean, pair.native, scores["chain_map"])
    surface = compute_surface(decoy.coords, decoy.elements, decoy.chain_ids, backend=surface_backend)
    bundle = featurize(pair.decoy_id, decoy, surface.proximity, surface.backend)
    folder = Path(cache) / pair.set_name
    graph_file, targets_file = folder / f"{pair.decoy_id}.graph.pt", folder / f"{pair.decoy_id}.targets.pt"
    save_graph(bundle, graph_file)
    payload = {
        "format": TARGETS_FORMAT,
        **{k: torch.from_numpy(np.asarray(v)) for k, v in targets.items() if k != "ca_rmsd"},
        "dockq": float(scores["global_dockq"]),
        "meta": {"set": pair.set_name, "target": pair.target, "decoy_id": pair.decoy_id,
                 "decoy": str(pair.decoy), "native": str(pair.native), "chain_map": scores["chain_map"],
                 "allowed_mismatches": int(scores["allowed_mismatches"]), "surface_warnings": surface.warnings,
                 "seconds": round(time.perf_counter() - began, 3)},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(targets_file, buffer.getvalue())
    return {"set": pair.set_name, "target": pair.target, "decoy_id": pair.decoy_id, "n_atoms": decoy.n_atoms,
            "n_matched": int(targets["target_mask"].sum()), "dockq": round(float(scores["global_dockq"]), 4),
            "ca_rmsd": round(targets["ca_rmsd"], 3),
            "graph": str(graph_file.relative_to(cache)), "targets": str(targets_file.relative_to(cache))}


def _prepare_or_reason(args: tuple[DecoyPair, Path, str]) -> dict | str:
    pair, cache, backend = args
    try:
        return prepare_pair(pair, cache, backend)
    except Exception as error:  # one bad pair must not stop the others; the reason is reported
        return f"{pair.set_name}/{pair.decoy_id}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def prepare(root: Path, sets: Sequence[str], cache: Path, surface_backend: str = "auto", workers: int = 1,
            progress: Callable[[str], None] | None = None) -> tuple[list[dict], list[str]]:
    """Prepare every decoy of ``sets`` under ``root`` into ``cache``; decoys already in ``cache/index.tsv``
    with both files present are kept as they are. Returns (index rows, one-line failure reasons) and
    writes ``cache/index.tsv``."""
    cache = Path(cache)
    done = {(r["set"], r["decoy_id"]): r for r in read_index(cache)} if (cache / "index.tsv").is_file() else {}
    done = {k: r for k, r in done.items() if (cache / r["graph"]).is_file() and (cache / r["targets"]).is_file()}
    todo = [p for p in find_pairs(root, sets) if (p.set_name, p.decoy_id) not in done]
    rows, failures = list(done.values()), []
    jobs = [(p, cache, surface_backend) for p in todo]
    for (pair, _, _), result in run_jobs(_prepare_or_reason, jobs, workers):
        if isinstance(result, str):
            failures.append(result)
        else:
            rows.append(result)
        if progress is not None:
            progress(result if isinstance(result, str) else f"{pair.set_name}/{pair.decoy_id} ok")
        write_index(rows, cache)  # after every decoy, so an interrupted run resumes where it stopped
    rows.sort(key=lambda r: (r["set"], r["target"], r["decoy_id"]))
    write_index(rows, cache)
    return rows, failures


def write_index(rows: Sequence[dict], cache: Path) -> None:
    atomic_write_table(Path(cache) / "index.tsv", INDEX_HEADER, rows)


def read_index(cache: Path) -> list[dict]:
    with open(Path(cache) / "index.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def load_example(cache: Path, row: dict) -> Example:
    """Load one prepared decoy (an ``index.tsv`` row) without unpickling arbitrary objects."""
    bundle = load_graph(Path(cache) / row["graph"])
    payload = torch.load(Path(cache) / row["targets"], map_location="cpu", weights_only=True)
    if payload.get("format") != TARGETS_FORMAT:
        raise ValueError(f"{row['targets']}: not an egr training-targets file ({TARGETS_FORMAT})")
    return Example(
        graph=bundle.graph, target_pos=payload["target_pos"], target_mask=payload["target_mask"],
        ca_node=payload["ca_node"], lddt_pairs=payload["lddt_pairs"], lddt_native_dist=payload["lddt_native_dist"],
        lddt_total=payload["lddt_total"], lddt_decoy=payload["lddt_decoy"], dockq=float(payload["dockq"]),
        meta=payload["meta"], complex=bundle.complex,
    )
