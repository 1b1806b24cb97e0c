"""Rigid-body docking poses of a target, with DockQ labels, for QA training (``egr sample-poses``).

A QA model must learn to tell right from wrong poses *of the same target*. Real decoy sets hold a few
poses per target; this module makes many: one chain of a 2-chain **base** complex (the cleaned native,
or for BM5 also the cleaned unbound decoy ``<T>_unbound``) is moved as a rigid body and every pose gets
DockQ v2's DockQ, Fnat, iRMSD and LRMSD against the native. A pose is stored as one rigid transform,
never as a structure file.

Rigid move (exact definition)
    The **ligand** is the base chain with fewer residues (ties: the later chain; in BM5 chain B), the
    **receptor** the other. With ``c`` the centroid (unweighted mean of the heavy-atom coordinates, Å) of the
    ligand *in the base*, a pose (R, t) moves every ligand atom ``x`` (row vector) to

        x' = (x − c) Rᵀ + c + t

    and leaves the receptor where it is. R (3, 3) is a proper rotation, t (3,) a translation in Å.
    The identity pose (R = I, t = 0) is the base itself.

Pose kinds (:data:`KINDS`) and their mix (defaults of :class:`SamplerConfig`, ``n`` poses per base)
    * ``base`` (pose 0): the identity; its DockQ is the base's own (1.0 for a native base). It keeps the
      base's own clashes (an unbound base interpenetrates its partner: 0-550 pairs < 3 Å in BM5).
    * ``near_native`` (``round(0.75·(n−1))`` poses): a rotation about a uniformly random axis through ``c``
      and a translation in a uniformly random direction, then the slide below. Their sizes follow from a
      target displacement ``D`` (Å): a share ``f ~ U(0, 1)`` of ``D²`` goes to the translation,
      ``|t| = min(D·√f, 10 Å)``, the rest to the rotation, ``θ = 2·asin(D·√(1−f) / (2·√(2/3)·Rg))`` (Rg:
      radius of gyration of the ligand backbone; for a random axis the RMS displacement of a rotation by θ
      is ``2 sin(θ/2)·√(2/3)·Rg``), so before the slide D is the ligand-backbone displacement, i.e. LRMSD.
      Quotas: ``n_near/4`` poses for each CAPRI class (incorrect, acceptable, medium, high). Each candidate
      is aimed at one class, drawn with probability proportional to its missing poses, and log D is
      (70 %, once the class has been hit on this base) an earlier hit's log D + N(0, 0.1²), or else read
      off this base's earlier candidates (medians of DockQ in bins of log D, made non-increasing, at a
      DockQ drawn uniformly within the class; :func:`_aim_displacement`), or before ten candidates drawn
      log-uniformly from the class window (:data:`CLASS_WINDOWS`: high 0.2–2.5 Å, medium 1.5–6 Å,
      acceptable 4–12 Å, incorrect 9–25 Å). A candidate is kept when its DockQ class still has room.
      A class aimed at ≥ 12 times and reached by < 10 % as many candidates is out of reach (high for an
      unbound base whose slides cost DockQ) and its slots go to the reached classes; after
      ``attempts_per_pose·n_near`` candidates every settled candidate is kept, and after twice as many
      the near-native slots still empty are given to wrong-site poses (ligands buried in their receptor,
      whose perturbations cannot get out of their clashes within :data:`MAX_ESCAPE`).
    * ``wrong_site`` (the rest, ``n − 1 − n_near``, more where near-native slots stay empty): a uniformly random rotation (normalised Gaussian
      quaternion) and a uniformly random approach direction ``u`` around the receptor: the ligand centroid
      starts on the ray ``c_R + s·u`` (c_R: receptor centroid) where the ligand is clear of the receptor
      and slides inwards to the first touch (below).

    * ``embedded`` (``round(embedded_fraction·(n−1))`` poses, taken from the wrong-site share; none by
      default, ``egr sample-poses --embedded-fraction``): a
      wrong-site approach that goes on past its first touch by a depth drawn log-uniformly from
      ``embedded_depth`` (1-12 Å), so the ligand interpenetrates its receptor at a wrong site. Rigid
      docking programs without a clash filter write such poses: the EquiDock decoys of the dips pools
      in the shared data hold up to 4,700 inter-chain pairs closer than 3 Å, mostly at wrong sites. Without them in
      training the docking head never learns that deep interpenetration marks a wrong pose.
    * ``docked`` (``round(docked_fraction·(n−1))`` poses, taken from the wrong-site share before the embedded
      ones; none by default, ``egr sample-poses --docked-fraction``): a wrong-site approach whose first
      touch is then climbed, as a docking program's search would, to more inter-chain contacts − 10 ×
      clashes (:func:`_climb`: rounds of random rotations of the ligand and tilts of its approach direction,
      each slid in again to the first touch within the same clash budget, the best kept). A first touch
      at a random site has a median of 63 contacts where the natives have 446 (median over the 250 bases
      of 2026-12-03); a docking program's wrong poses have hundreds, as its correct ones do. Without such
      poses the contact count alone separates the sampled right from wrong poses, and a head trained on
      them ranks a well-packed wrong site above a correct pose.
    * ``pushed`` (``round(pushed_fraction·(n−1))`` poses, taken from the wrong-site share; none by default,
      ``egr sample-poses --pushed-fraction``): the base itself with its ligand translated straight towards
      the receptor's centroid by a depth drawn log-uniformly from ``embedded_depth`` (1-12 Å), as the
      product's push test does (tests/test_docking.py). The right site driven into its partner: the
      near-native poses of unbound partners interpenetrate (docking pools), so only these poses tell the
      docking head that going deeper at the right site lowers DockQ, and by how much.

Contact without interpenetration (the slides)
    Inter-chain heavy-atom pairs closer than 3 Å are **clashes**, pairs closer than 5 Å **contacts**.
    Each pose draws a clash budget ``K`` uniformly from the integers ``⌈m/2⌉ … m``, ``m = max(3, clashes
    of the native)`` (natives have 0-36, median 6: hydrogen bonds and salt bridges are < 3 Å), the same
    for near-native and wrong-site poses, so that their clash counts do not tell them apart (embedded poses
    are deep past this budget by design). With ``clash_budget_from_base`` (``egr sample-poses
    --clash-budget base``) m also covers the base's own clashes, which an unbound base has at the right
    pose (:class:`SamplerConfig`). Along a line the clash count is
    known exactly: a pair is closer than 3 Å on an open interval of the offset, the roots of a quadratic
    (:class:`_Ray`), so slides stop :data:`SLIDE_MARGIN` (0.001 Å) past the exact boundary, with ≤ K
    clashes and, next to more, in contact.

    * wrong-site: from where the ligand is clear of the receptor, sphere tracing (moving by the smallest
      inter-chain distance minus 3 Å keeps every pair ≥ 3 Å apart), then the first offset coming in at
      which more than K clashes begin; the pose sits just outside it.
    * near-native with more clashes than m (more than the native has): the shortest straight move out to
      ≤ K clashes over six directions: the mean (ligand − receptor atom) vector of its clashing pairs,
      three random directions within 45° of it, the base's interface normal and the direction from c_R;
      a candidate that needs more than :data:`MAX_ESCAPE` (8 Å) is dropped.
    * near-native without any contact: slid in along the base's interface normal (receptor interface
      atoms → ligand interface atoms, 10 Å) to the first touch, as for wrong-site poses.

Labels (DockQ v2.1.3, exactly as ``DockQ model native`` computes them)
    The residue pairing is DockQ's own: both files are read with DockQ's parser, chains are grouped and
    every chain mapping enumerated as its CLI does (:func:`egr.metrics.dockq_scores`), each chain pair is
    aligned with DockQ's aligner and only identical aligned residues are kept (all residues when the
    sequences are equal). From that pairing, once per base and mapping:

    * native contacts: aligned residue pairs (receptor × ligand) with any heavy-atom pair < 5 Å in the
      native; ``fnat = reproduced / all native contacts`` (the denominator counts every contact of the
      full native chains, as DockQ does);
    * interface: aligned residues with any heavy atom < 10 Å of the partner in the native;
      ``iRMSD`` = RMSD of their backbone atoms (N, CA, C, O present in both) after optimal superposition;
    * ``LRMSD``: backbone RMSD of DockQ's ligand (the native chain with fewer residues; ties: the first
      native chain) after superposing DockQ's receptor backbone;
    * ``DockQ = (fnat + 1/(1+(iRMSD/1.5)²) + 1/(1+(LRMSD/8.5)²)) / 3``, the best over the chain mappings
      (homodimers: the swapped mapping can win), first mapping on ties.

    Per pose this is a gather of the moved coordinates, a segment minimum and two 3×3 SVDs (no structure
    is written or parsed); ``tests/test_poses.py`` checks the labels against the DockQ package on PDB
    files of sampled poses.

Storage (:func:`save_poses` / :func:`load_poses`, ``.npz`` without pickles, format :data:`POSES_FORMAT`)
    ``rotations`` (n, 3, 3) float64, ``translations`` (n, 3) float64 Å, ``centre`` (3,) float64 Å,
    ``kind`` (n,) int8 (index into ``kind_names``), ``dockq``, ``fnat``, ``irmsd``, ``lrmsd`` (n,) float64,
    ``clashes``, ``contacts`` (n,) int32, ``mapping`` (n,) str (DockQ's ``model:native`` chain string),
    and scalars ``format``, ``seed``, ``ligand_chain``, ``receptor_chain``, ``base_name``, ``base_sha256``,
    ``native_name``, ``native_sha256``, ``source_sha256`` (the file the base was cleaned from),
    ``params`` (JSON of the :class:`SamplerConfig`).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from DockQ.constants import BACKBONE_ATOMS, INTERFACE_THRESHOLD
from scipy.spatial import cKDTree

from egr.evaluate import CAPRI_CLASSES
from egr.io import atomic_write_bytes, atomic_write_table, file_sha256
from egr.jobs import run_jobs
from egr.physics import CLASH_CUTOFF, CLASH_WEIGHT, CONTACT_CUTOFF
from egr.structure import Complex, IngestError, read_decoy, sanitize_id, write_pdb

POSES_FORMAT = "egr-poses/1"
KINDS = ("base", "near_native", "wrong_site", "embedded", "docked", "pushed")
CLASS_NAMES = ("incorrect", *CAPRI_CLASSES)
CAPRI_THRESHOLDS = tuple(CAPRI_CLASSES.values())  # DockQ lower bounds of acceptable, medium, high
# log-uniform windows (Å) of the near-native target displacement D, per aimed class (index of CLASS_NAMES)
CLASS_WINDOWS = ((9.0, 25.0), (4.0, 12.0), (1.5, 6.0), (0.2, 2.5))
MAX_TRANSLATION = 10.0  # Å, near-native translations
ESCAPE_STEP = 4.0  # Å, escapes this short are found for all directions from one KD-tree query
MAX_ESCAPE = 8.0  # Å, a near-native candidate that needs a longer slide out of its clashes is dropped (module doc)
SLIDE_MARGIN = 1e-3  # Å, slides stop this far past the exact clash boundary
INDEX_HEADER = ("set", "target", "base_id", "split", "n_poses", "base_dockq", "dockq_min", "dockq_q25",
                "dockq_median", "dockq_q75", "dockq_max", *(f"n_{c}" for c in CLASS_NAMES),
                "n_near_native", "n_wrong_site", "n_embedded", "n_docked", "n_pushed", "seconds")
SKIPPED_HEADER = ("set", "target", "base_id", "split", "reason")

# strict "< r" for cKDTree's inclusive ball queries
_CLASH_R = float(np.nextafter(CLASH_CUTOFF, 0.0))
_CONTACT_R = float(np.nextafter(CONTACT_CUTOFF, 0.0))
_ARRAY_FIELDS = ("rotations", "translations", "kind", "dockq", "fnat", "irmsd", "lrmsd", "clashes", "contacts",
                 "mapping")


@dataclass(frozen=True)
class SamplerConfig:
    """Mix and limits of the pose sampler (module doc).

    near_native_fraction: share of the non-identity poses that are near-native.
    embedded_fraction: share of the non-identity poses that are embedded (the rest are wrong-site); 0 by
        default, because training with 0.1 did not validate better (MODEL_CARD.md, "Experiments").
    embedded_depth: (lowest, highest) Å an embedded pose goes on past its first touch, and a pushed pose's
        ligand towards the receptor's centroid, log-uniform.
    pushed_fraction: share of the non-identity poses that are pushed (the base's ligand driven into its
        receptor); 0 by default.
    docked_fraction: share of the non-identity poses that are docked (wrong-site approaches climbed to more
        contacts); 0 by default.
    docking_rounds, docking_tries: rounds of the docked poses' hill climb, and moves tried per round.
    attempts_per_pose: candidate near-native poses per kept one before any class is accepted.
    min_clash_budget: the per-pose clash budget K is drawn from ⌈m/2⌉ … m, m = max(min_clash_budget,
        clashes of the native).
    clash_budget_from_base: m also covers the clashes of the base itself (pose 0). An unbound base
        interpenetrates its partner at the right pose (0-550 pairs < 3 Å in BM5), and so do a docking
        program's near-native poses of unbound partners (median 296 in the LightDock test pools); with
        the native's budget alone every sampled near-native of such a base is slid out of that, and
        clashes tell the sampled right poses from the docked ones. False by default (the shipped
        weights' poses).
    """

    near_native_fraction: float = 0.75
    embedded_fraction: float = 0.0
    embedded_depth: tuple[float, float] = (1.0, 12.0)
    docked_fraction: float = 0.0
    pushed_fraction: float = 0.0
    docking_rounds: int = 8
    docking_tries: int = 6
    attempts_per_pose: int = 2
    min_clash_budget: int = 3
    clash_budget_from_base: bool = False


@dataclass(frozen=True)
class PoseSet:
    """Rigid-body poses of one base complex and their DockQ labels (module doc for the move x' = (x−c)Rᵀ+c+t).

    rotations: (n, 3, 3) float64, proper rotations R. translations: (n, 3) float64 Å, t.
    centre: (3,) float64 Å, c, the ligand centroid of the base.
    kind: (n,) int8, index into :data:`KINDS` (0 base, 1 near_native, 2 wrong_site, 3 embedded, 4 docked,
        5 pushed).
    dockq, fnat: (n,) float64 in [0, 1]; irmsd, lrmsd: (n,) float64 Å (DockQ v2 definitions).
    clashes, contacts: (n,) int32, inter-chain heavy-atom pairs < 3 Å and < 5 Å.
    mapping: (n,) str, DockQ's ``model:native`` chain string of the winning mapping (e.g. ``"AB:BA"``).
    ligand_chain, receptor_chain: chain IDs of the moved and the fixed chain.
    seed: the seed the poses were drawn with. base_name, base_sha256: file name and SHA-256 of the base PDB
    (empty when the base was never written); native_name, native_sha256: the native the labels refer to;
    source_sha256: the file the base was cleaned from (empty if unknown). params: JSON of the SamplerConfig.
    """

    rotations: np.ndarray
    translations: np.ndarray
    centre: np.ndarray
    kind: np.ndarray
    dockq: np.ndarray
    fnat: np.ndarray
    irmsd: np.ndarray
    lrmsd: np.ndarray
    clashes: np.ndarray
    contacts: np.ndarray
    mapping: np.ndarray
    ligand_chain: str
    receptor_chain: str
    seed: int
    base_name: str = ""
    base_sha256: str = ""
    native_name: str = ""
    native_sha256: str = ""
    source_sha256: str = ""
    params: str = "{}"

    def __len__(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def capri_class(self) -> np.ndarray:
        """(n,) int, index into :data:`CLASS_NAMES` of each pose's DockQ."""
        return capri_class(self.dockq)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.capri_class, minlength=len(CLASS_NAMES))
        return {name: int(c) for name, c in zip(CLASS_NAMES, counts)}


def capri_class(dockq: np.ndarray) -> np.ndarray:
    """(n,) int: 0 incorrect (< 0.23), 1 acceptable, 2 medium (≥ 0.49), 3 high (≥ 0.80)."""
    return np.searchsorted(np.asarray(CAPRI_THRESHOLDS), np.asarray(dockq, dtype=float), side="right")


# --------------------------------------------------------------------------------------------
# Rigid transforms
# --------------------------------------------------------------------------------------------


def ligand_mask(base: Complex, ligand_chain: str) -> np.ndarray:
    """(n_atoms,) bool, True for the atoms of ``ligand_chain``."""
    mask = base.chain_ids == ligand_chain
    if not mask.any():
        raise ValueError(f"no chain {ligand_chain!r} in the base (chains {''.join(base.chain_names)})")
    return mask


def default_ligand_chain(base: Complex) -> str:
    """The chain with fewer residues (ties: the later chain) of a 2-chain complex."""
    names = base.chain_names
    if len(names) != 2:
        raise ValueError(f"{len(names)} chains ({''.join(names)}); poses need a 2-chain complex")
    starts = base.residue_starts
    counts = np.bincount(base.chain_index[starts], minlength=2)
    return names[0] if counts[0] < counts[1] else names[1]


def apply_pose(coords: np.ndarray, ligand_mask: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               centre: np.ndarray | None = None) -> np.ndarray:
    """Coordinates (n, 3) Å after the rigid move x' = (x − c) Rᵀ + c + t of the ligand atoms.

    coords (n, 3) Å of the base; ligand_mask (n,) bool; rotation (3, 3); translation (3,) Å; centre (3,) Å,
    c, by default the centroid of ``coords[ligand_mask]``. Receptor rows are returned unchanged (a copy).
    """
    coords = np.asarray(coords, dtype=np.float64)
    mask = np.asarray(ligand_mask, dtype=bool)
    c = coords[mask].mean(axis=0) if centre is None else np.asarray(centre, dtype=np.float64)
    out = coords.copy()
    out[mask] = (coords[mask] - c) @ np.asarray(rotation, dtype=np.float64).T + c + np.asarray(translation)
    return out


def pose_coords(base: Complex, poses: PoseSet, i: int) -> np.ndarray:
    """(n_atoms, 3) Å coordinates of pose ``i`` of ``poses`` applied to ``base`` (the base they were drawn on)."""
    mask = ligand_mask(base, poses.ligand_chain)
    return apply_pose(base.coords, mask, poses.rotations[i], poses.translations[i], poses.centre)


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 3) rotations uniform on SO(3) (normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return quaternion_to_matrix(q)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotation matrices of unit quaternions (n, 4) in (w, x, y, z) order."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about the unit vector ``axis`` (Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * (cross @ cross)


def random_unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# DockQ labels
# --------------------------------------------------------------------------------------------


def _kabsch(mobile: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R (3, 3), t (3,) minimising ‖mobile Rᵀ + t − reference‖ over proper rotations (both (m, 3))."""
    mc, rc = mobile.mean(0), reference.mean(0)
    u, _, vt = np.linalg.svd((mobile - mc).T @ (reference - rc))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d if d != 0 else 1.0]) @ u.T
    return rotation, rc - mc @ rotation.T


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((a - b) ** 2) / len(a)))


def _dockq_formula(fnat: float, irmsd: float, lrmsd: float) -> float:
    return (fnat + 1.0 / (1.0 + (irmsd / 1.5) ** 2) + 1.0 / (1.0 + (lrmsd / 8.5) ** 2)) / 3.0


@dataclass(frozen=True)
class _MappingTerms:
    """Everything one chain mapping needs to score a pose (rows index the base Complex)."""

    mapping: str  # DockQ's model:native string
    nat_total: int
    contact_a: np.ndarray  # (P,) atom rows of the first model residue of each native-contact atom pair
    contact_b: np.ndarray  # (P,) ... of the second residue
    contact_starts: np.ndarray  # (C,) start of each native contact's segment in contact_a/b
    interface_rows: np.ndarray  # (I,) backbone rows of interface residues
    interface_native: np.ndarray  # (I, 3) Å their native partners
    receptor_rows: np.ndarray
    receptor_native: np.ndarray
    ligand_rows: np.ndarray
    ligand_native: np.ndarray

    def score(self, coords: np.ndarray) -> tuple[float, float, float, float]:
        """(DockQ, fnat, iRMSD Å, LRMSD Å) of the base with coordinates ``coords`` (n_atoms, 3)."""
        if len(self.contact_starts):
            d2 = np.sum((coords[self.contact_a] - coords[self.contact_b]) ** 2, axis=1)
            nat_correct = int(np.count_nonzero(np.minimum.reduceat(d2, self.contact_starts) < CONTACT_CUTOFF ** 2))
        else:
            nat_correct = 0
        fnat = nat_correct / self.nat_total
        x = coords[self.interface_rows]
        rotation, shift = _kabsch(x, self.interface_native)
        irmsd = _rms(x @ rotation.T + shift, self.interface_native)
        rotation, shift = _kabsch(coords[self.receptor_rows], self.receptor_native)
        lrmsd = _rms(coords[self.ligand_rows] @ rotation.T + shift, self.ligand_native)
        return _dockq_formula(fnat, irmsd, lrmsd), fnat, irmsd, lrmsd


def _segment_pairs(start_a: np.ndarray, count_a: np.ndarray, start_b: np.ndarray,
                   count_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All atom pairs (rows) of residue pairs given by (start, count) of each side, segment by segment."""
    sizes = count_a * count_b
    seg_starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    seg = np.repeat(np.arange(len(sizes)), sizes)
    offset = np.arange(int(sizes.sum())) - seg_starts[seg]
    return start_a[seg] + offset // count_b[seg], start_b[seg] + offset % count_b[seg], seg_starts


def _min_residue_distance(coords_a: np.ndarray, res_a: np.ndarray, coords_b: np.ndarray, res_b: np.ndarray,
                          cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Residue pairs (ra, rb) with some atom pair closer than ``cutoff`` (strict), each pair once."""
    pairs = cKDTree(coords_a).sparse_distance_matrix(cKDTree(coords_b), cutoff, output_type="ndarray")
    close = pairs[pairs["v"] < cutoff]
    if len(close) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = np.unique(res_a[close["i"]].astype(np.int64) * (int(res_b.max()) + 1) + res_b[close["j"]])
    return keys // (int(res_b.max()) + 1), keys % (int(res_b.max()) + 1)


class DockQLabeller:
    """DockQ v2 of any coordinates of one base against its native, without writing files (module doc).

    Built once per base: ``DockQLabeller(base, base_file, native_file)``; ``base_file`` must hold exactly
    ``base`` (as :func:`egr.structure.write_pdb` writes it) and ``native_file`` is the native structure
    (PDB/mmCIF, optionally gzipped; H/D atoms are ignored like :func:`egr.metrics.dockq_scores` does).
    Raises :class:`egr.metrics.ScoringError` or ValueError with a one-line reason when DockQ could not
    score the base either (chains that do not pair, no native interface, ...).
    """

    def __init__(self, base: Complex, base_file: Path, native_file: Path):
        from DockQ import DockQ as dockq_lib

        from egr.metrics import (ScoringError, _clear_dockq_caches, _is_mmcif, _load_for_dockq, _pair_chains,
                                 write_without_hydrogens)

        base_file, native_file = Path(base_file), Path(native_file)
        label = f"{base_file.name} vs {native_file.name}"
        if any(len(c) != 1 for c in base.chain_names):
            raise ValueError(f"{label}: DockQ reads one-character chain IDs only ({base.chain_names})")
        self.base = base
        starts = base.residue_starts
        self._res_start = starts
        self._res_count = np.diff(np.r_[starts, base.n_atoms])
        residue_of = {(str(c), int(s), str(i)): k for k, (c, s, i) in enumerate(
            zip(base.chain_ids[starts], base.res_seq[starts], base.ins_codes[starts]))}
        # (residue, atom name) keys of the base's atoms, for backbone lookups
        self._atom_key = np.char.add(np.char.add(base.residue_index.astype(str), ":"), base.atom_names)
        self._atom_order = np.argsort(self._atom_key)
        self._backbone = tuple(BACKBONE_ATOMS)
        self.terms: list[_MappingTerms] = []
        try:
            with tempfile.TemporaryDirectory(prefix="egr-poses-") as scratch:
                model_copy = write_without_hydrogens(base_file, Path(scratch) / "model.pdb")
                native_copy = write_without_hydrogens(
                    native_file, Path(scratch) / ("native.cif" if _is_mmcif(native_file) else "native.pdb"))
                model = _load_for_dockq(model_copy, None, f"{label}: model")
                native = _load_for_dockq(native_copy, None, f"{label}: native")
                model_ids, native_ids = [c.id for c in model], [c.id for c in native]
                self.native_clashes = _pair_count([self._native_atoms(c)[0] for c in native], _CLASH_R)
                if len(model_ids) != 2 or len(native_ids) != 2:
                    raise ValueError(f"{label}: poses need 2 protein chains on each side "
                                     f"(model {''.join(model_ids)}, native {''.join(native_ids)})")
                clusters, reverse_map, self.allowed_mismatches = _pair_chains(
                    model, native, model_ids, native_ids, 0, True, label)
                for chain_map in dockq_lib.get_all_chain_maps(clusters, {}, reverse_map, model_ids, native_ids):
                    terms = self._mapping_terms(dockq_lib, model, native, chain_map, residue_of)
                    if terms is not None:
                        self.terms.append(terms)
        finally:
            _clear_dockq_caches()
        if not self.terms:
            raise ScoringError(f"{label}: the native has no interface between the mapped chains")

    def _native_atoms(self, chain) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Heavy atoms of a DockQ native chain as DockQ sees them: coords (a, 3), residue (a,), names (a,)."""
        residues = list(chain)
        atoms = [(k, a.id, a.coord) for k, residue in enumerate(residues) for a in residue.get_atoms()]
        coords = np.array([a[2] for a in atoms], dtype=np.float64).reshape(-1, 3)
        return coords, np.array([a[0] for a in atoms], dtype=np.int64), np.array([a[1] for a in atoms], dtype=str), \
            {r.id: k for k, r in enumerate(residues)}

    def _backbone_pairs(self, model_res: np.ndarray, native_res: np.ndarray, native_keys: np.ndarray,
                        native_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backbone atoms present in both members of paired residues: base rows and native coordinates."""
        names = np.array(self._backbone, dtype=str)
        m_keys = np.char.add(np.char.add(np.repeat(model_res, len(names)).astype(str), ":"),
                             np.tile(names, len(model_res)))
        n_keys = np.char.add(np.char.add(np.repeat(native_res, len(names)).astype(str), ":"),
                             np.tile(names, len(native_res)))
        m_row = _lookup(m_keys, self._atom_key, self._atom_order)
        n_order = np.argsort(native_keys)
        n_row = _lookup(n_keys, native_keys, n_order)
        both = (m_row >= 0) & (n_row >= 0)
        return m_row[both], native_coords[n_row[both]]

    def _mapping_terms(self, dockq_lib, model, native, chain_map: dict, residue_of: dict) -> _MappingTerms | None:
        native_pair = list(itertools.combinations(list(chain_map.keys()), 2))[0]
        model_chains = [model[chain_map[c]] for c in native_pair]
        native_chains = [native[c] for c in native_pair]
        sides = []
        for mc, nc in zip(model_chains, native_chains):
            alignment = tuple(dockq_lib.format_alignment(dockq_lib.align_chains(mc, nc, use_numbering=False)).values())
            aligned_model, aligned_native = dockq_lib.get_aligned_residues(mc, nc, alignment)
            coords, res, names, native_index = self._native_atoms(nc)
            model_res = np.array([residue_of[(mc.id, int(r.id[1]), r.id[2].strip())] for r in aligned_model],
                                 dtype=np.int64)
            native_res = np.array([native_index[r.id] for r in aligned_native], dtype=np.int64)
            sides.append({"coords": coords, "res": res, "keys": np.char.add(np.char.add(res.astype(str), ":"), names),
                          "model_res": model_res, "native_res": native_res, "n_residues": len(native_index)})
        a, b = sides
        # native contacts of the full chains give the denominator of fnat
        ra, _ = _min_residue_distance(a["coords"], a["res"], b["coords"], b["res"], CONTACT_CUTOFF)
        nat_total = len(ra)
        if nat_total == 0:
            return None
        # aligned residues only: their native atoms, renumbered 0..len(aligned)-1
        aligned = []
        for side in sides:
            position = np.full(side["n_residues"], -1, dtype=np.int64)
            position[side["native_res"]] = np.arange(len(side["native_res"]))
            keep = position[side["res"]] >= 0
            aligned.append((side["coords"][keep], position[side["res"][keep]]))
        ca, cb = _min_residue_distance(aligned[0][0], aligned[0][1], aligned[1][0], aligned[1][1], CONTACT_CUTOFF)
        ia, ib = _min_residue_distance(aligned[0][0], aligned[0][1], aligned[1][0], aligned[1][1],
                                       INTERFACE_THRESHOLD)
        pa, pb = a["model_res"][ca], b["model_res"][cb]
        contact_a, contact_b, contact_starts = _segment_pairs(self._res_start[pa], self._res_count[pa],
                                                              self._res_start[pb], self._res_count[pb])
        interface = [self._backbone_pairs(s["model_res"][np.unique(r)], s["native_res"][np.unique(r)], s["keys"],
                                          s["coords"]) for s, r in ((a, ia), (b, ib))]
        interface_rows = np.concatenate([interface[0][0], interface[1][0]])
        interface_native = np.concatenate([interface[0][1], interface[1][1]])
        # DockQ: receptor = the native chain with more residues (ties: the second one)
        receptor, ligand = (a, b) if len(native_chains[0]) > len(native_chains[1]) else (b, a)
        receptor_rows, receptor_native = self._backbone_pairs(receptor["model_res"], receptor["native_res"],
                                                              receptor["keys"], receptor["coords"])
        ligand_rows, ligand_native = self._backbone_pairs(ligand["model_res"], ligand["native_res"],
                                                          ligand["keys"], ligand["coords"])
        if min(len(interface_rows), len(receptor_rows), len(ligand_rows)) < 3:
            raise ValueError(f"too few backbone atoms paired with the native for mapping "
                             f"{dockq_lib.format_mapping_string(chain_map)}")
        return _MappingTerms(dockq_lib.format_mapping_string(chain_map), nat_total, contact_a, contact_b,
                             contact_starts, interface_rows, interface_native, receptor_rows, receptor_native,
                             ligand_rows, ligand_native)

    def score(self, coords: np.ndarray) -> tuple[float, float, float, float, str]:
        """(DockQ, fnat, iRMSD Å, LRMSD Å, mapping) of ``coords`` (n_atoms, 3) Å of the base's atoms; the
        best mapping by DockQ, the first on ties (as DockQ's CLI chooses)."""
        best: tuple | None = None
        for terms in self.terms:
            values = terms.score(coords)
            if best is None or values[0] > best[0]:
                best = (*values, terms.mapping)
        return best  # type: ignore[return-value]


def _pair_count(chains: Sequence[np.ndarray], radius: float) -> int:
    """Atom pairs closer than ``radius`` between the first two of ``chains`` ((a, 3) coordinates each)."""
    if len(chains) < 2 or not len(chains[0]) or not len(chains[1]):
        return 0
    return int(cKDTree(chains[0]).query_ball_point(chains[1], radius, return_length=True).sum())


def _lookup(keys: np.ndarray, table: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Index of each key in ``table`` (sorted by ``order``), −1 where absent."""
    if len(table) == 0 or len(keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    sorted_table = table[order]
    where = np.clip(np.searchsorted(sorted_table, keys), 0, len(table) - 1)
    return np.where(sorted_table[where] == keys, order[where], -1)


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


class _Geometry:
    """Receptor KD-tree and ligand frame of one base, for clash counts and slides.

    Counts are exact but cheap: each ligand residue is a sphere (its centroid, radius = farthest atom), and
    only the atoms of residues whose sphere comes within the cutoff of a receptor atom are queried."""

    def __init__(self, base: Complex, mask: np.ndarray):
        self.mask = mask
        self.receptor = base.coords[~mask]
        self.tree = cKDTree(self.receptor)
        self.centre = base.coords[mask].mean(axis=0)
        self.receptor_centre = self.receptor.mean(axis=0)
        self.local = base.coords[mask] - self.centre  # ligand atoms relative to c
        residue = base.residue_index[mask]
        self.residue = np.cumsum(np.r_[0, np.diff(residue) != 0])  # 0..r-1 within the ligand, contiguous
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.residue) != 0])
        self.sizes = np.diff(np.r_[self.starts, len(self.residue)])
        centres = np.add.reduceat(self.local, self.starts, axis=0) / self.sizes[:, None]
        distance = np.sqrt(np.sum((self.local - centres[self.residue]) ** 2, axis=1))
        self.radius = np.maximum.reduceat(distance, self.starts) + 1e-6
        # extreme points for extents along a direction (a linear function peaks on the convex hull)
        self.receptor_hull = self.receptor[_hull_vertices(self.receptor)]
        self.ligand_hull = self.local[_hull_vertices(self.local)]
        # interface normal of the base: receptor interface atoms → ligand interface atoms (10 Å), else centroids
        ligand_near = self.tree.query_ball_point(base.coords[mask], INTERFACE_THRESHOLD, return_length=True) > 0
        receptor_near = cKDTree(base.coords[mask]).query_ball_point(self.receptor, INTERFACE_THRESHOLD,
                                                                    return_length=True) > 0
        normal = (base.coords[mask][ligand_near].mean(0) - self.receptor[receptor_near].mean(0)
                  if ligand_near.any() and receptor_near.any() else self.centre - self.receptor_centre)
        norm = float(np.linalg.norm(normal))
        self.normal = normal / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])

    def ligand(self, rotation: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Ligand atoms rotated by R about c with the centroid moved to ``position``."""
        return self.local @ rotation.T + position

    def near(self, ligand: np.ndarray, cutoff: float) -> np.ndarray:
        """(a,) bool: ligand atoms of residues whose sphere lies within ``cutoff`` of a receptor atom (every atom
        closer than ``cutoff`` to the receptor is among them)."""
        centres = np.add.reduceat(ligand, self.starts, axis=0) / self.sizes[:, None]
        return (self.tree.query_ball_point(centres, cutoff + self.radius, return_length=True) > 0)[self.residue]

    def clashes(self, ligand: np.ndarray) -> int:
        """Inter-chain heavy-atom pairs < 3 Å of the ligand atoms (a, 3) with the receptor."""
        atoms = ligand[self.near(ligand, CLASH_CUTOFF)]
        return int(self.tree.query_ball_point(atoms, _CLASH_R, return_length=True).sum()) if len(atoms) else 0

    def counts(self, ligand: np.ndarray) -> tuple[int, int]:
        """(clashes, contacts): inter-chain heavy-atom pairs < 3 Å and < 5 Å."""
        atoms = ligand[self.near(ligand, CONTACT_CUTOFF)]
        if not len(atoms):
            return 0, 0
        within = self.tree.query_ball_point(atoms, _CONTACT_R, return_length=True)
        close = atoms[within > 0]
        return (int(self.tree.query_ball_point(close, _CLASH_R, return_length=True).sum()) if len(close) else 0,
                int(within.sum()))

    def gap(self, ligand: np.ndarray, cap: float = 40.0) -> float:
        """The smallest inter-chain heavy-atom distance (Å), at most ``cap``."""
        centres = np.add.reduceat(ligand, self.starts, axis=0) / self.sizes[:, None]
        to_centre = self.tree.query(centres, k=1, distance_upper_bound=cap + float(self.radius.max()))[0]
        if not np.isfinite(to_centre).any():
            return cap
        upper = float(np.min(to_centre + self.radius))
        candidates = ligand[(to_centre - self.radius <= upper)[self.residue]]
        return min(float(np.min(self.tree.query(candidates, k=1)[0])), cap)

    def free_offset(self, rotation: np.ndarray, start: np.ndarray, direction: np.ndarray) -> float:
        """An offset λ ≥ 0 at which the rotated ligand, its centroid at ``start + λ·direction``, is ≥ 3 Å from
        every receptor atom (its extent along the direction clears the receptor's)."""
        receptor_extent = float(np.max((self.receptor_hull - start) @ direction))
        ligand_extent = float(np.max(-(self.ligand_hull @ rotation.T) @ direction))
        return max(1e-3, receptor_extent + ligand_extent + CLASH_CUTOFF + 0.01)

    def escape_direction(self, ligand: np.ndarray) -> np.ndarray:
        """Unit vector along the mean (ligand − receptor atom) of the clashing pairs, else the base's normal."""
        atoms = ligand[self.near(ligand, CLASH_CUTOFF)]
        if len(atoms):
            pairs = cKDTree(atoms).sparse_distance_matrix(self.tree, _CLASH_R, output_type="ndarray")
            if len(pairs):
                push = np.mean(atoms[pairs["i"]] - self.receptor[pairs["j"]], axis=0)
                norm = float(np.linalg.norm(push))
                if norm > 1e-6:
                    return push / norm
        return self.normal

    def escape(self, rotation: np.ndarray, start: np.ndarray, budget: int,
               rng: np.random.Generator, reach: float = MAX_ESCAPE) -> tuple[float | None, np.ndarray]:
        """A short straight move out of a clash: (λ, direction) with at most ``budget`` clashes at
        ``start + λ·direction``, the shortest over six directions: the mean (ligand − receptor atom) vector
        of the clashing pairs, three random directions within 45° of it, the base's interface normal and
        the direction from the receptor centroid (module doc). λ is None when none gets out within
        ``reach`` Å. Moves up to :data:`ESCAPE_STEP` are found for all directions from one KD-tree query:
        every pair that can clash there is within 3 Å + ESCAPE_STEP at λ = 0."""
        ligand = self.ligand(rotation, start)
        push = self.escape_direction(ligand)
        outward = start - self.receptor_centre
        directions = np.array([push, *_cone(rng, push, math.radians(45.0), 3), self.normal,
                               outward / max(float(np.linalg.norm(outward)), 1e-9)])
        radius = CLASH_CUTOFF + ESCAPE_STEP
        atoms = ligand[self.near(ligand, radius)]
        pairs = cKDTree(atoms).sparse_distance_matrix(self.tree, radius, output_type="ndarray")
        w = atoms[pairs["i"]] - self.receptor[pairs["j"]]
        squared = np.sum(w * w, axis=1)
        best, best_direction = None, push
        for direction, along in zip(directions, (w @ directions.T).T):
            starts, ends = _clash_intervals(along, squared, 0.0)
            candidates = ends[(ends > 0.0) & (ends < ESCAPE_STEP)] + SLIDE_MARGIN
            free = candidates[_Ray.count(starts, ends, candidates) <= budget]
            if len(free) and (best is None or free[0] < best):
                best, best_direction = float(free[0]), direction
        if best is not None or reach <= ESCAPE_STEP:
            return best, best_direction
        for direction in directions:
            lam = self.ray(rotation, start, direction).escape(budget, math.inf if best is None else best, reach,
                                                              low=ESCAPE_STEP)
            if lam is not None and (best is None or lam < best):
                best, best_direction = lam, direction
        return best, best_direction

    def ray(self, rotation: np.ndarray, start: np.ndarray, direction: np.ndarray) -> "_Ray":
        return _Ray(self, rotation, start, direction)


def _clash_intervals(along: np.ndarray, squared: np.ndarray, origin: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted starts and sorted ends of the open λ intervals in which pairs are closer than 3 Å.

    A pair with separation w (ligand − receptor atom) at λ = ``origin`` is at ``|w + (λ − origin)·u|``;
    ``along`` = w·u and ``squared`` = |w|² per pair; the distance is below 3 Å between the roots of
    ``(λ − origin)² + 2·along·(λ − origin) + squared − 9``."""
    disc = along ** 2 - squared + CLASH_CUTOFF ** 2
    keep = disc > 0
    root = np.sqrt(disc[keep])
    return np.sort(origin - along[keep] - root), np.sort(origin - along[keep] + root)


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    """Indices of the convex-hull vertices of (m, 3) points (all of them when the hull is degenerate)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        return ConvexHull(points).vertices
    except (QhullError, ValueError):
        return np.arange(len(points))


def _cone(rng: np.random.Generator, axis: np.ndarray, max_angle: float, k: int) -> list[np.ndarray]:
    """``k`` unit vectors at uniformly random angles up to ``max_angle`` (radians) from ``axis``."""
    out = []
    for v in random_unit_vectors(rng, k):
        perpendicular = v - (v @ axis) * axis
        norm = float(np.linalg.norm(perpendicular))
        if norm < 1e-9:
            out.append(axis)
            continue
        angle = rng.uniform(0.0, max_angle)
        out.append(math.cos(angle) * axis + math.sin(angle) * perpendicular / norm)
    return out


class _Ray:
    """The rotated ligand moved along a line: centroid at ``start + λ·direction``, λ in Å.

    The clash count is known exactly as a function of λ: an atom pair (ligand a, receptor b) is closer than
    3 Å exactly for λ in the open interval where ``|a(λ) − b|² < 9``, a quadratic in λ. One KD-tree query
    per range of λ finds every pair that can come that close within the range (the ligand atoms within
    3 Å + half the range of the receptor at the range's middle), and the count at any λ is the number of
    intervals holding it. Slides therefore stop :data:`SLIDE_MARGIN` past the exact boundary."""

    def __init__(self, geometry: _Geometry, rotation: np.ndarray, start: np.ndarray, direction: np.ndarray):
        self.g, self.local, self.start, self.direction = geometry, geometry.local @ rotation.T, start, direction

    def at(self, lam: float) -> np.ndarray:
        return self.local + self.start + lam * self.direction

    def intervals(self, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """Sorted starts and sorted ends (λ) of the clash intervals of every pair that clashes in [low, high]."""
        middle, half = 0.5 * (low + high), 0.5 * (high - low)
        ligand = self.at(middle)
        atoms = ligand[self.g.near(ligand, CLASH_CUTOFF + half)]
        if not len(atoms):
            return np.zeros(0), np.zeros(0)
        pairs = cKDTree(atoms).sparse_distance_matrix(self.g.tree, CLASH_CUTOFF + half, output_type="ndarray")
        w = atoms[pairs["i"]] - self.g.receptor[pairs["j"]]
        return _clash_intervals(w @ self.direction, np.sum(w * w, axis=1), middle)

    @staticmethod
    def count(starts: np.ndarray, ends: np.ndarray, lams: np.ndarray) -> np.ndarray:
        """(k,) number of open intervals (start, end) holding each λ."""
        return np.searchsorted(starts, lams, side="left") - np.searchsorted(ends, lams, side="right")

    def escape(self, budget: int, give_up: float = math.inf, reach: float = MAX_ESCAPE,
               low: float = 0.0) -> float | None:
        """The smallest λ > ``low`` with at most ``budget`` clashes, for a ligand that has more at λ = ``low``
        (just past the end of a clash interval, where counts drop); None when it lies beyond ``reach`` or
        ``give_up``. The ligand is clear of the receptor at the extent-based limit, so an unlimited reach
        always succeeds."""
        limit = self._free_limit()
        end = min(limit, give_up, reach)
        while low < end:
            high = min(low + 4.0, end)  # 4 Å ranges keep each query's radius at 5 Å
            starts, ends = self.intervals(low, high)
            candidates = ends[(ends > low) & (ends < high)] + SLIDE_MARGIN
            free = candidates[self.count(starts, ends, candidates) <= budget]
            if len(free):
                return float(free[0])
            low = high
        return limit if limit <= min(give_up, reach) else None

    def _free_limit(self) -> float:
        receptor_extent = float(np.max((self.g.receptor_hull - self.start) @ self.direction))
        ligand_extent = float(np.max(-self.local @ self.direction))
        return max(1e-3, receptor_extent + ligand_extent + CLASH_CUTOFF + 0.01)

    def approach(self, free_at: float, budget: int) -> float | None:
        """The first touch coming from ``free_at`` (clear of the receptor) towards smaller λ: just above the
        end of a clash interval below which there are more than ``budget`` clashes. Sphere tracing while
        the gap is wide (moving by the minimum distance minus 3 Å keeps every pair ≥ 3 Å apart), then 3 Å
        ranges of exact intervals. None when the ray never meets the receptor."""
        lam = free_at
        for _ in range(60):
            gap = self.g.gap(self.at(lam))
            if gap - CLASH_CUTOFF < 0.3:
                break
            lam -= gap - CLASH_CUTOFF
        else:
            return None
        for _ in range(20):
            starts, ends = self.intervals(lam - 3.0, lam)
            candidates = ends[(ends > lam - 3.0) & (ends <= lam)]
            over = candidates[self.count(starts, ends, candidates - SLIDE_MARGIN) > budget]
            if len(over):
                return float(over[-1]) + SLIDE_MARGIN
            lam -= 3.0
        return None


def _touch(geometry: _Geometry, rotation: np.ndarray, direction: np.ndarray, budget: int) -> float | None:
    """Offset s (Å) along ``direction`` from the receptor centroid at which the ligand, rotated by R and coming
    in from afar, first touches the receptor with at most ``budget`` clashes (None: it never does)."""
    ray = geometry.ray(rotation, geometry.receptor_centre, direction)
    return ray.approach(geometry.free_offset(rotation, geometry.receptor_centre, direction), budget)


def _climb(geometry: _Geometry, rng: np.random.Generator, rotation: np.ndarray, direction: np.ndarray, s: float,
           budget: int, config: SamplerConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """A docked pose: the wrong-site touch (R, u, s) climbed to more contacts − 10 × clashes (module doc).

    Each round tries ``docking_tries`` moves, each a rotation of the ligand about its centroid by up to θ
    and a tilt of the approach direction by up to θ/2 (θ = 24° in the first round, shrinking by a quarter
    per round), slid in again to the first touch with at most ``budget`` clashes; the best move is kept
    when it improves the score. Returns the climbed (R, u, s)."""
    def score(r: np.ndarray, u: np.ndarray, offset: float) -> float:
        clashes, contacts = geometry.counts(geometry.ligand(r, geometry.receptor_centre + offset * u))
        return contacts - CLASH_WEIGHT * clashes

    best = score(rotation, direction, s)
    angle = math.radians(24.0)
    for _ in range(config.docking_rounds):
        round_best = None
        for _ in range(config.docking_tries):
            axis, tilt = random_unit_vectors(rng, 2)
            r = axis_angle_matrix(axis, rng.uniform(0.0, angle)) @ rotation
            u = direction + math.tan(rng.uniform(0.0, angle / 2)) * (tilt - (tilt @ direction) * direction)
            u /= np.linalg.norm(u)
            offset = _touch(geometry, r, u, budget)
            if offset is None:
                continue
            value = score(r, u, offset)
            if value > best and (round_best is None or value > round_best[0]):
                round_best = (value, r, u, offset)
        if round_best is not None:
            best, rotation, direction, s = round_best
        angle *= 0.75
    return rotation, direction, s


def _derive_seed(*parts: object) -> int:
    """A 63-bit seed from the given parts (stable across runs, platforms and process order)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _class_quotas(n_near: int) -> np.ndarray:
    """(4,) near-native poses per CAPRI class (incorrect … high), as even as possible, remainders to the top."""
    return np.array([n_near // 4 + (k >= 4 - n_near % 4) for k in range(4)], dtype=np.int64)


def _aim_displacement(rng: np.random.Generator, aim: int, log_d: np.ndarray, dockq: np.ndarray) -> float:
    """log of the target displacement D (Å) of a near-native candidate aimed at CAPRI class ``aim``.

    With fewer than 10 earlier candidates, or when the class lies outside what they reached, D is drawn
    log-uniformly from the class window (:data:`CLASS_WINDOWS`). Otherwise a DockQ value is drawn uniformly
    in the class (incorrect: 0.05–0.23, high: 0.80 up to the best reached) and D is read off the earlier
    candidates of this base: the medians of DockQ in bins of log D, made non-increasing, interpolated,
    plus N(0, 0.1²) in log D. This accounts for the ligand's size and for the slides of the base.
    """
    low, high = CLASS_WINDOWS[aim]
    window = rng.uniform(math.log(low), math.log(high))
    if len(log_d) < 10:
        return window
    edges = np.linspace(math.log(0.1), math.log(30.0), 26)
    which = np.clip(np.digitize(log_d, edges) - 1, 0, len(edges) - 2)
    filled = np.unique(which)
    centres = 0.5 * (edges[filled] + edges[filled + 1])
    medians = np.minimum.accumulate(np.array([np.median(dockq[which == b]) for b in filled]))
    bounds = (0.05, *CAPRI_THRESHOLDS, 1.0)
    lo, hi = bounds[aim], min(bounds[aim + 1], float(medians[0]))
    if hi <= lo or medians[-1] > hi:
        return window
    target = rng.uniform(lo, hi)
    # medians is non-increasing along centres: interpolate on the reversed (non-decreasing) arrays
    return float(np.interp(target, medians[::-1], centres[::-1])) + rng.normal(0.0, 0.1)


def sample_poses(base: Complex, native_file: Path, n: int = 200, seed: int = 0, *, base_file: Path | None = None,
                 ligand_chain: str | None = None, config: SamplerConfig = SamplerConfig(),
                 source_file: Path | None = None) -> PoseSet:
    """Sample ``n`` rigid-body poses of ``base`` and label them with DockQ against ``native_file`` (module doc).

    Args:
        base: cleaned 2-chain complex (e.g. :func:`egr.structure.read_decoy` of the native or of a decoy).
        native_file: the native structure file the labels refer to (as for :func:`egr.metrics.dockq_scores`).
        n: number of poses (≥ 1); pose 0 is the identity.
        seed: everything random comes from ``numpy.random.default_rng(seed)``; the same inputs and seed
            give identical poses.
        base_file: a PDB holding exactly ``base`` (its name and SHA-256 are recorded). None: the base is
            written to a scratch file for DockQ's parser and no name is recorded.
        ligand_chain: the moved chain; default :func:`default_ligand_chain`.
        config: the kind mix (:class:`SamplerConfig`).
        source_file: the file the base was cleaned from (its SHA-256 is recorded for resuming).
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    ligand_chain = ligand_chain or default_ligand_chain(base)
    receptor_chain = next(c for c in base.chain_names if c != ligand_chain)
    mask = ligand_mask(base, ligand_chain)
    if base_file is None:
        with tempfile.TemporaryDirectory(prefix="egr-poses-") as scratch:
            scratch_file = Path(scratch) / "base.pdb"
            write_pdb(base, scratch_file)
            labeller = DockQLabeller(base, scratch_file, native_file)
        base_name = base_sha = ""
    else:
        labeller = DockQLabeller(base, base_file, native_file)
        base_name, base_sha = Path(base_file).name, file_sha256(base_file) or ""
    geometry = _Geometry(base, mask)
    rng = np.random.default_rng(seed)
    top_budget = max(config.min_clash_budget, labeller.native_clashes)
    if config.clash_budget_from_base:
        top_budget = max(top_budget, geometry.counts(geometry.ligand(np.eye(3), geometry.centre))[0])

    def budget() -> int:
        """Clash budget K of one pose: uniform on the integers ⌈m/2⌉ … m (SamplerConfig: m)."""
        return int(rng.integers((top_budget + 1) // 2, top_budget + 1))

    def pose(rotation: np.ndarray, translation: np.ndarray, kind: int) -> tuple:
        ligand = geometry.ligand(rotation, geometry.centre + translation)
        coords = base.coords.copy()
        coords[mask] = ligand
        return (rotation, translation, kind, labeller.score(coords), *geometry.counts(ligand))

    def settle(rotation: np.ndarray, translation: np.ndarray, k: int) -> np.ndarray | None:
        """Near-native slide (module doc): out of the clashes, down to ``k``, when the pose has more than the
        native (m); in along the base's interface normal when it has no contact. The new translation, or
        None when the pose cannot be settled (no way out within MAX_ESCAPE, or no contact on the normal)."""
        start = geometry.centre + translation
        ligand = geometry.ligand(rotation, start)
        clashes, contacts = geometry.counts(ligand)
        if clashes > top_budget:  # more clashes than m: out to at most k
            offset, direction = geometry.escape(rotation, start, k, rng)
            return None if offset is None else translation + offset * direction
        if contacts > 0:
            return translation
        offset = geometry.ray(rotation, start, geometry.normal).approach(0.0, k)
        return None if offset is None else translation + offset * geometry.normal

    poses = [pose(np.eye(3), np.zeros(3), 0)]
    n_near = int(round(config.near_native_fraction * (n - 1)))

    # near-native: aimed at the classes that still miss poses (module doc)
    backbone = np.isin(base.atom_names[mask], ("N", "CA", "C", "O"))
    local_bb = geometry.local[backbone] if backbone.sum() >= 3 else geometry.local
    rg = float(np.sqrt(np.mean(np.sum((local_bb - local_bb.mean(0)) ** 2, axis=1))))
    rotation_scale = 2.0 * math.sqrt(2.0 / 3.0) * max(rg, 1.0)
    quota = _class_quotas(n_near)
    accepted = np.zeros(4, dtype=np.int64)
    aimed = np.zeros(4, dtype=np.int64)
    hits: list[list[float]] = [[], [], [], []]
    tried_log_d: list[float] = []
    tried_dockq: list[float] = []
    attempts, max_attempts = 0, config.attempts_per_pose * max(n_near, 1)
    while len(poses) < 1 + n_near and attempts < 2 * max_attempts:
        missing = np.maximum(quota - accepted, 0)
        aim = int(rng.choice(4, p=missing / missing.sum())) if missing.sum() else int(rng.integers(4))
        aimed[aim] += 1
        if hits[aim] and rng.uniform() < 0.7:
            log_d = float(rng.choice(hits[aim])) + rng.normal(0.0, 0.1)
        else:
            log_d = _aim_displacement(rng, aim, np.asarray(tried_log_d), np.asarray(tried_dockq))
        displacement, share = math.exp(log_d), rng.uniform()
        angle = 2.0 * math.asin(min(1.0, displacement * math.sqrt(1.0 - share) / rotation_scale))
        axis, direction = random_unit_vectors(rng, 2)
        rotation = axis_angle_matrix(axis, angle)
        translation = min(displacement * math.sqrt(share), MAX_TRANSLATION) * direction
        settled = settle(rotation, translation, budget())
        attempts += 1
        if settled is None:
            continue
        candidate = pose(rotation, settled, 1)
        cls = int(capri_class(candidate[3][0]))
        tried_log_d.append(log_d)
        tried_dockq.append(candidate[3][0])
        hits[cls].append(log_d)
        if accepted[cls] < quota[cls] or attempts > max_attempts:
            accepted[cls] += 1  # past the attempt budget every settled candidate is kept
            poses.append(candidate)
            continue
        # a class aimed at 12 times or more and hit by fewer than 10 % as many candidates is out of reach
        # (e.g. high for an unbound base whose slides cost DockQ): its slots go to the classes that were hit
        reached = np.array([len(h) > 0 for h in hits])
        rare = np.array([len(h) for h in hits]) < 0.1 * aimed
        for k in np.flatnonzero((aimed >= 12) & rare & (quota > accepted)):
            spare = int(quota[k] - accepted[k])
            quota[k] = accepted[k]
            np.add.at(quota, np.flatnonzero(reached)[np.arange(spare) % int(reached.sum())], 1)

    # pushed: the base's ligand straight towards the receptor's centroid (module doc)
    low_depth, high_depth = (math.log(d) for d in config.embedded_depth)
    inwards = geometry.receptor_centre - geometry.centre
    inwards = inwards / max(float(np.linalg.norm(inwards)), 1e-9)
    n_pushed = min(int(round(config.pushed_fraction * (n - 1))), n - len(poses)) if n > 1 else 0
    for _ in range(n_pushed):
        poses.append(pose(np.eye(3), math.exp(rng.uniform(low_depth, high_depth)) * inwards, 5))

    # wrong-site: random orientation and approach direction, slid from afar into contact; embedded: the
    # same approach pushed on past the first touch (module doc)
    n_embedded = int(round(config.embedded_fraction * (n - 1))) if n > 1 else 0
    n_docked = int(round(config.docked_fraction * (n - 1))) if n > 1 else 0
    wrong_attempts = 0
    while len(poses) < n:
        wrong_attempts += 1
        if wrong_attempts > 20 * n:
            raise ValueError(f"no wrong-site contact found in {wrong_attempts} approaches")
        rotation = random_rotations(rng, 1)[0]
        direction = random_unit_vectors(rng, 1)[0]
        k = budget()
        s = _touch(geometry, rotation, direction, k)
        if s is None:
            continue
        kind = 2 if len(poses) < n - n_embedded - n_docked else 4 if len(poses) < n - n_embedded else 3
        if kind == 3:
            s -= math.exp(rng.uniform(low_depth, high_depth))
        if kind == 4:
            rotation, direction, s = _climb(geometry, rng, rotation, direction, s, k, config)
        poses.append(pose(rotation, geometry.receptor_centre + s * direction - geometry.centre, kind))

    labels = [p[3] for p in poses]
    return PoseSet(
        rotations=np.array([p[0] for p in poses], dtype=np.float64),
        translations=np.array([p[1] for p in poses], dtype=np.float64),
        centre=geometry.centre.copy(), kind=np.array([p[2] for p in poses], dtype=np.int8),
        dockq=np.array([x[0] for x in labels]), fnat=np.array([x[1] for x in labels]),
        irmsd=np.array([x[2] for x in labels]), lrmsd=np.array([x[3] for x in labels]),
        clashes=np.array([p[4] for p in poses], dtype=np.int32),
        contacts=np.array([p[5] for p in poses], dtype=np.int32),
        mapping=np.array([x[4] for x in labels], dtype=str), ligand_chain=ligand_chain, receptor_chain=receptor_chain,
        seed=int(seed), base_name=base_name, base_sha256=base_sha, native_name=Path(native_file).name,
        native_sha256=file_sha256(native_file) or "",
        source_sha256=(file_sha256(source_file) or "") if source_file else "",
        params=json.dumps({**asdict(config), "n": n}, sort_keys=True),
    )


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def save_poses(path: Path, poses: PoseSet) -> None:
    """Write ``poses`` to ``path`` (.npz, no pickles) atomically (module doc for the schema)."""
    arrays = {name: np.asarray(getattr(poses, name)) for name in _ARRAY_FIELDS}
    arrays["centre"] = np.asarray(poses.centre, dtype=np.float64)
    arrays["seed"] = np.asarray(poses.seed, dtype=np.int64)
    arrays["format"] = np.asarray(POSES_FORMAT)
    arrays["kind_names"] = np.asarray(KINDS)
    for name in ("ligand_chain", "receptor_chain", "base_name", "base_sha256", "native_name", "native_sha256",
                 "source_sha256", "params"):
        arrays[name] = np.asarray(str(getattr(poses, name)))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_poses(path: Path) -> PoseSet:
    """Read a file written by :func:`save_poses` (``allow_pickle=False``); ValueError if it is not one."""
    with np.load(Path(path), allow_pickle=False) as data:
        if "format" not in data.files or str(data["format"]) != POSES_FORMAT:
            raise ValueError(f"{path}: not an egr poses file ({POSES_FORMAT})")
        names = tuple(str(k) for k in data["kind_names"])
        if names != KINDS[:len(names)]:  # files from before a kind was added list a prefix of KINDS
            raise ValueError(f"{path}: unknown pose kinds {data['kind_names'].tolist()}")
        values = {name: data[name] for name in _ARRAY_FIELDS}
        scalars = {name: str(data[name]) for name in ("ligand_chain", "receptor_chain", "base_name", "base_sha256",
                                                      "native_name", "native_sha256", "source_sha256", "params")}
        return PoseSet(**values, centre=data["centre"], seed=int(data["seed"]), **scalars)


# --------------------------------------------------------------------------------------------
# `egr sample-poses`
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetBase:
    """One base of a target: the file it is cleaned from, its native, and where its outputs go
    (``OUTDIR/<set>/<base_id>.base.pdb`` and files beside it)."""

    set_name: str
    target: str
    base_id: str
    split: str
    source: Path
    native: Path
    outdir: Path

    @property
    def base_pdb(self) -> Path:
        return self.outdir / self.set_name / f"{self.base_id}.base.pdb"

    def skipped_row(self, reason: str) -> dict:
        """This base's row of ``skipped.tsv``."""
        return {"set": self.set_name, "target": self.target, "base_id": self.base_id, "split": self.split,
                "reason": reason}


@dataclass(frozen=True)
class BaseJob(TargetBase):
    """One base to sample: ``n`` poses drawn with ``seed``."""

    n: int
    seed: int
    config: SamplerConfig = field(default_factory=SamplerConfig)

    @property
    def poses_npz(self) -> Path:
        return self.outdir / self.set_name / f"{self.base_id}.poses.npz"


def index_row(job: BaseJob, poses: PoseSet, seconds: float) -> dict:
    q = np.quantile(poses.dockq, [0.0, 0.25, 0.5, 0.75, 1.0])
    row = {"set": job.set_name, "target": job.target, "base_id": job.base_id, "split": job.split,
           "n_poses": len(poses), "base_dockq": round(float(poses.dockq[0]), 4),
           **{f"dockq_{k}": round(float(v), 4) for k, v in zip(("min", "q25", "median", "q75", "max"), q)},
           **{f"n_{k}": v for k, v in poses.class_counts().items()},
           "n_near_native": int(np.sum(poses.kind == 1)), "n_wrong_site": int(np.sum(poses.kind == 2)),
           "n_embedded": int(np.sum(poses.kind == 3)), "n_docked": int(np.sum(poses.kind == 4)),
           "n_pushed": int(np.sum(poses.kind == 5)),
           "seconds": round(seconds, 2)}
    return row


def _existing(job: BaseJob) -> PoseSet | None:
    """The job's outputs when they are complete and were made from the same inputs and settings."""
    if not (job.base_pdb.is_file() and job.poses_npz.is_file()):
        return None
    try:
        poses = load_poses(job.poses_npz)
    except (OSError, ValueError, KeyError):
        return None
    same = (len(poses) == job.n and poses.seed == job.seed and poses.base_sha256 == file_sha256(job.base_pdb)
            and poses.source_sha256 == file_sha256(job.source) and poses.native_sha256 == file_sha256(job.native)
            and poses.params == json.dumps({**asdict(job.config), "n": job.n}, sort_keys=True))
    return poses if same else None


def run_job(job: BaseJob) -> tuple[dict | None, str | None, bool]:
    """Sample one base: (index row, None, reused) or (None, one-line reason, False)."""
    began = time.perf_counter()
    try:
        existing = _existing(job)
        if existing is not None:
            return index_row(job, existing, 0.0), None, True
        base, _ = read_decoy(job.source)
        if len(base.chain_names) != 2:
            raise ValueError(f"{len(base.chain_names)} protein chains ({''.join(base.chain_names)}); poses need 2")
        write_pdb(base, job.base_pdb, remarks=[f"egr sample-poses base {job.base_id} cleaned from {job.source.name}"])
        base, _ = read_decoy(job.base_pdb)  # sample on exactly the coordinates the file holds
        poses = sample_poses(base, job.native, job.n, job.seed, base_file=job.base_pdb, config=job.config,
                             source_file=job.source)
        save_poses(job.poses_npz, poses)
        return index_row(job, poses, time.perf_counter() - began), None, False
    except Exception as error:  # one unusable base must not stop the others; the reason is reported
        text = str(error).splitlines()[0] if str(error) else ""
        return None, f"{type(error).__name__}: {text}", False


def plan_jobs(root: Path, splits_file: Path, outdir: Path, splits: Sequence[str], n: int, seed: int,
              config: SamplerConfig = SamplerConfig()) -> tuple[list[BaseJob], list[dict]]:
    """The bases of every target of ``splits`` (native, and for bm5 the ``<T>_unbound`` decoy), plus the
    targets skipped before sampling (missing files, more than 2 chains) as ``skipped.tsv`` rows."""
    from egr.split import read_splits

    jobs, skipped = [], []
    for row in sorted(read_splits(splits_file), key=lambda r: (r.set_name, r.target)):
        if row.split not in splits:
            continue
        folder = Path(root) / row.set_name / row.target
        natives = sorted((folder / "native").glob("*.pdb*")) + sorted((folder / "native").glob("*.cif*"))
        if not natives:
            skipped.append({"set": row.set_name, "target": row.target, "base_id": "", "split": row.split,
                            "reason": f"no native under {folder / 'native'}"})
            continue
        n_chains = _protein_chain_count(natives[0])
        if n_chains != 2:
            skipped.append({"set": row.set_name, "target": row.target, "base_id": "", "split": row.split,
                            "reason": f"the native has {n_chains} protein chains; poses need 2"})
            continue
        sources = [(f"{row.target}_native", natives[0])]
        if row.set_name == "bm5":
            unbound = sorted((folder / "decoys").glob(f"{row.target}_unbound.*"))
            if unbound:
                sources.append((sanitize_id(unbound[0]), unbound[0]))
            else:
                skipped.append({"set": row.set_name, "target": row.target, "base_id": f"{row.target}_unbound",
                                "split": row.split, "reason": "no <T>_unbound decoy"})
        for base_id, source in sources:
            jobs.append(BaseJob(row.set_name, row.target, base_id, row.split, source, natives[0], Path(outdir), n,
                                _derive_seed(seed, row.set_name, row.target, base_id), config))
    return jobs, skipped


def _protein_chain_count(path: Path) -> int:
    try:
        return len(read_decoy(path)[0].chain_names)
    except IngestError:
        return 0


def sample_dataset(root: Path, splits_file: Path, outdir: Path, splits: Sequence[str] = ("train", "val"),
                   n: int = 200, seed: int = 0, workers: int = 1, config: SamplerConfig = SamplerConfig(),
                   progress: Callable[[str], None] | None = None) -> dict:
    """Body of ``egr sample-poses``: sample every base, write ``outdir/index.tsv`` (one row per sampled base)
    and ``outdir/skipped.tsv`` (set, target, base_id, split, reason). Outputs already complete for the same
    inputs are kept (resumable). Returns {rows, skipped, classes (poses per CAPRI class), reused, seconds}."""
    began = time.perf_counter()
    outdir = Path(outdir)
    jobs, skipped = plan_jobs(root, splits_file, outdir, splits, n, seed, config)
    rows: list[dict] = []
    reused = 0
    for job, (row, reason, was_reused) in run_jobs(run_job, jobs, workers):
        if row is None:
            skipped.append(job.skipped_row(reason))
        else:
            rows.append(row)
            reused += was_reused
        if progress is not None:
            status = f"failed: {reason}" if row is None else ("kept" if was_reused else f"{row['seconds']} s")
            progress(f"{job.set_name}/{job.base_id}: {status}")
        atomic_write_table(outdir / "index.tsv", INDEX_HEADER, rows)  # after every base, so a crash resumes
    rows.sort(key=lambda r: (r["set"], r["target"], r["base_id"]))
    atomic_write_table(outdir / "index.tsv", INDEX_HEADER, rows)
    atomic_write_table(outdir / "skipped.tsv", SKIPPED_HEADER, skipped)
    classes = {c: sum(int(r[f"n_{c}"]) for r in rows) for c in CLASS_NAMES}
    return {"rows": rows, "skipped": skipped, "classes": classes, "reused": reused,
            "seconds": time.perf_counter() - began}
