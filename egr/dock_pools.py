"""Single-program decoy pools for judging a QA score (``egr dock-pools``): LightDock docks each target
and its own scoring picks the pool.

Pools that mix docking programs are easy for a score that counts contacts: each program leaves its own
kind of wrong pose. A pool from one program holds the wrong sites *that program's* score likes best,
which is where contact counts and the program's own score tend to fail. This module builds such pools for
the validation and test targets, so that ``egr run`` + ``egr evaluate --external-scores`` can put EGR's
``pred_dockq`` beside the program's score and the contacts−clashes line on them.

Docking (LightDock 0.9.4, PyPI ``lightdock``: GSO with the ``fastdfire`` scoring function, rigid, no ANM)
    The **base** is a cleaned 2-chain complex, as for :mod:`egr.poses`: for BM5 the unbound partners
    ``<T>_unbound`` (unbound docking), otherwise the native with its chains taken apart (bound docking).
    The receptor is the larger chain, the ligand the other (:func:`egr.poses.default_ligand_chain`); both
    go to LightDock as separate heavy-atom PDBs in the base's frame, and LightDock places the ligand in
    random orientations on ``swarms`` spots around the receptor and optimises ``glowworms`` poses per spot
    for ``steps`` steps (``lightdock3_setup.py --noxt --noh --now -s S -g G --seed_points SEED``, then
    ``lightdock3.py setup.json STEPS -s fastdfire -sg SEED -c 1``). Every final glowworm is one pose.

True-interface restraints (``restraints = "true_interface"``, ``egr dock-pools --restraints true-interface``)
    Unrestrained at this machine's budget, LightDock rarely reaches an acceptable pose (module "Pool"), so
    a pool would hold only wrong sites. Docking benchmarks meet the same problem with the "true interface"
    scenario (HADDOCK's BM5 runs, for one): the interface residues are given to the program as restraints.
    Here every residue of the base with a heavy atom within :data:`egr.physics.CONTACT_CUTOFF` (5 Å) of the
    other chain *in the base* (for BM5 the unbound partners superposed on the complex, so the same
    interface) is an active restraint (``R``/``L`` lines of LightDock's restraints file, ``-r``).
    LightDock then places its swarms next to the receptor's restrained residues (``-spr``: ⌊swarms / receptor
    restraints⌋, at least 1, swarms per restraint, so about ``swarms`` or, with many restraints, one per
    restrained residue), orients the ligand's restrained residues towards them, and scores a pose by
    fastdfire × (1 + share of receptor restraints + share of ligand restraints at its interface); the pool
    is still its best-scored distinct poses, now wrong orientations and shifts around the right site, which
    contact counts hardly tell apart.

Rigid move
    LightDock centres both partners (unweighted mean of the atoms it reads, ``c_R`` and ``c_L``) and
    reports a pose as a translation ``t`` and a unit quaternion ``q`` (w, x, y, z) with the ligand at
    ``(x − c_L) R(q)ᵀ + t`` beside the receptor at ``x − c_R``. In the base's frame that is the ligand at
    ``(x − c_L) Rᵀ + t + c_R``, stored as an :mod:`egr.poses` move ``x' = (x − c) Rᵀ + c + t'`` about the
    base's ligand centroid ``c``: ``t' = (c − c_L) Rᵀ + t + c_R − c``. The centres are read back from
    LightDock's own centred files, so atoms it drops (OXT) cannot shift them.

Pool (defaults of :class:`PoolConfig`)
    Poses are ranked by LightDock's score (higher is better) and thinned greedily: a pose is kept when its
    ligand Cα atoms lie ≥ ``distinct_rmsd`` (3 Å, no superposition: the receptor is fixed) from every pose
    kept before it. The pool is the ``n_top`` best-scored distinct poses (``source = top``) plus up to
    ``n_near`` further distinct poses that LightDock found but ranked lower and that are at least
    acceptable (DockQ ≥ 0.23; ``source = near_native``), best-scored first. Labels are DockQ v2's
    (:class:`egr.poses.DockQLabeller`, equal to the DockQ program).

Outputs under ``OUTDIR``
    ``<set>/<base_id>.base.pdb`` (the base) and ``<set>/<base_id>.pool.npz`` (every pose LightDock
    returned: moves, scores, labels, pool membership; format :data:`POOL_FORMAT`, no pickles);
    ``decoys/<id>.pdb`` for each pool member (materialised from the moves, for ``egr run``);
    ``samplesheet.csv`` (``id,decoy,native``), ``lightdock_scores.tsv`` (``id``, ``lightdock_score``: the
    file ``egr evaluate --external-scores`` takes), ``pool.tsv`` (per member: target, source, score,
    DockQ, Fnat, iRMSD, LRMSD, class) and ``skipped.tsv``. A base whose outputs exist for the same inputs,
    seed and settings is kept (resumable).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from egr.interface import subset
from egr.io import atomic_write_bytes, atomic_write_table, atomic_write_text, file_sha256
from egr.jobs import run_jobs
from egr.physics import CONTACT_CUTOFF
from egr.poses import (CAPRI_THRESHOLDS, CLASS_NAMES, BaseJob, DockQLabeller, TargetBase, _derive_seed, apply_pose,
                       capri_class, default_ligand_chain, ligand_mask, plan_jobs, quaternion_to_matrix)
from egr.runner import write_samplesheet
from egr.structure import Complex, read_decoy, write_pdb

POOL_FORMAT = "egr-dock-pool/1"
LIGHTDOCK_VERSION = "0.9.4"  # the version whose command line and output format this module reads
SOURCES = ("top", "near_native")
RESTRAINTS = ("none", "true_interface")  # PoolConfig.restraints (module doc)
POOL_HEADER = ("id", "set", "target", "base_id", "split", "source", "lightdock_score", "dockq", "fnat", "irmsd",
               "lrmsd", "capri_class")
SKIPPED_HEADER = ("set", "target", "base_id", "split", "reason")
# a final glowworm line of gso_<steps>.out: "(tx, ty, tz, qw, qx, qy, qz)  rec lig luciferin neighbours vision score"
_GLOWWORM = re.compile(r"^\(([^)]*)\)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_ARRAYS = ("rotations", "translations", "score", "swarm", "dockq", "fnat", "irmsd", "lrmsd", "mapping",
           "pool_rank", "source")


@dataclass(frozen=True)
class PoolConfig:
    """LightDock's sampling and the pool's make-up (module doc)."""

    swarms: int = 20
    glowworms: int = 30
    steps: int = 30
    n_top: int = 20
    n_near: int = 5
    distinct_rmsd: float = 3.0  # Å, ligand Cα RMSD between two kept poses
    restraints: str = "none"  # one of RESTRAINTS

    def __post_init__(self) -> None:
        if self.restraints not in RESTRAINTS:
            raise ValueError(f"restraints must be one of {', '.join(RESTRAINTS)}, got {self.restraints!r}")


@dataclass(frozen=True)
class DockedPool:
    """Every pose LightDock returned for one base, with labels and pool membership.

    rotations (n, 3, 3), translations (n, 3) Å, centre (3,) Å: the moves x' = (x − c) Rᵀ + c + t of the ligand
    (:func:`egr.poses.apply_pose`). score (n,): LightDock's fastdfire score (higher = better). swarm (n,) int.
    dockq, fnat (n,) in [0, 1], irmsd, lrmsd (n,) Å, mapping (n,) str: DockQ v2 against the native.
    pool_rank (n,) int: position in the pool (0 = first), −1 for poses not in it. source (n,) int: index
    into :data:`SOURCES` for pool members, −1 otherwise.
    """

    rotations: np.ndarray
    translations: np.ndarray
    centre: np.ndarray
    score: np.ndarray
    swarm: np.ndarray
    dockq: np.ndarray
    fnat: np.ndarray
    irmsd: np.ndarray
    lrmsd: np.ndarray
    mapping: np.ndarray
    pool_rank: np.ndarray
    source: np.ndarray
    ligand_chain: str
    receptor_chain: str
    seed: int
    base_sha256: str
    native_sha256: str
    source_sha256: str
    params: str

    def members(self) -> np.ndarray:
        """Indices of the pool's poses in pool order."""
        inside = np.flatnonzero(self.pool_rank >= 0)
        return inside[np.argsort(self.pool_rank[inside])]

    def only_members(self) -> DockedPool:
        """The pool's members alone, in pool order (per-pose arrays indexed by :meth:`members`)."""
        chosen = self.members()
        return replace(self, **{name: getattr(self, name)[chosen] for name in _ARRAYS})


def lightdock_available() -> tuple[bool, str]:
    """(True, version) when LightDock's scripts are on PATH and its package is the version this module
    reads; else (False, one-line reason)."""
    try:
        version = metadata.version("lightdock")
    except metadata.PackageNotFoundError:
        return False, f"LightDock is not installed (pip install 'egr-nf[docking]', i.e. lightdock=={LIGHTDOCK_VERSION})"
    if version != LIGHTDOCK_VERSION:
        return False, f"LightDock {version} is installed; this module reads the output of {LIGHTDOCK_VERSION}"
    missing = [s for s in ("lightdock3_setup.py", "lightdock3.py") if shutil.which(s) is None]
    if missing:
        return False, f"LightDock's {', '.join(missing)} not on PATH"
    return True, version


# --------------------------------------------------------------------------------------------
# One LightDock run
# --------------------------------------------------------------------------------------------


def _first_atom(path: Path) -> np.ndarray:
    """(3,) Å coordinates of the first ATOM record of a PDB file."""
    with path.open() as handle:
        for line in handle:
            if line.startswith("ATOM"):
                return np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])
    raise ValueError(f"{path.name}: no ATOM record")


def read_glowworms(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Translations (m, 3) Å, quaternions (m, 4) (w, x, y, z) and scores (m,) of a LightDock
    ``gso_<step>.out`` file (rigid runs: exactly 7 pose numbers per line)."""
    translations, quaternions, scores = [], [], []
    for line in path.read_text().splitlines():
        match = _GLOWWORM.match(line)
        if not match:
            continue
        pose = [float(v) for v in match.group(1).split(",")]
        if len(pose) != 7:
            raise ValueError(f"{path}: {len(pose)} pose numbers per glowworm; a rigid run writes 7 (ANM on?)")
        translations.append(pose[:3])
        quaternions.append(pose[3:])
        scores.append(float(match.group(7)))
    if not scores:
        raise ValueError(f"{path}: no glowworm poses")
    return np.array(translations), np.array(quaternions), np.array(scores)


def _run(command: list[str], workdir: Path, timeout: float) -> None:
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"{Path(command[0]).name} exited {done.returncode}: {lines[-1] if lines else 'no output'}")


def dock(base: Complex, ligand_chain: str, config: PoolConfig, seed: int, workdir: Path,
         timeout: float = 3600.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run LightDock on ``base`` with ``ligand_chain`` as the ligand, in ``workdir``.

    Returns rotations (m, 3, 3), translations (m, 3) Å as moves about the base's ligand centroid (module
    doc), scores (m,) and swarm indices (m,), for m = swarms × glowworms poses (with restraints, the swarms
    LightDock kept)."""
    mask = ligand_mask(base, ligand_chain)
    receptor_pdb, ligand_pdb = workdir / "receptor.pdb", workdir / "ligand.pdb"
    write_pdb(subset(base, np.flatnonzero(~mask)), receptor_pdb)
    write_pdb(subset(base, np.flatnonzero(mask)), ligand_pdb)
    lightdock_seed = str(seed % 2**31)  # LightDock seeds numpy's legacy generator (32-bit)
    setup = ["lightdock3_setup.py", receptor_pdb.name, ligand_pdb.name, "--noxt", "--noh", "--now",
             "-s", str(config.swarms), "-g", str(config.glowworms), "--seed_points", lightdock_seed]
    if config.restraints == "true_interface":
        restraints = true_interface_restraints(base, ligand_chain)
        atomic_write_text(workdir / "restraints.list", restraints)
        # LightDock keeps up to -spr swarms next to each receptor restraint: about `swarms` in all
        n_receptor = max(1, sum(line.startswith("R ") for line in restraints.splitlines()))
        setup += ["-r", "restraints.list", "-spr", str(max(1, config.swarms // n_receptor))]
    _run(setup, workdir, timeout)
    _run(["lightdock3.py", "setup.json", str(config.steps), "-s", "fastdfire", "-sg", lightdock_seed, "-c", "1"],
         workdir, timeout)
    # LightDock centred each partner; the first atom of its centred copy gives the centre it removed
    receptor_centre = _first_atom(receptor_pdb) - _first_atom(workdir / "lightdock_receptor.pdb")
    ligand_centre = _first_atom(ligand_pdb) - _first_atom(workdir / "lightdock_ligand.pdb")
    # with restraints LightDock keeps only the swarms next to them, so count the folders it made
    n_swarms = len(list(workdir.glob("swarm_*")))
    parts = [read_glowworms(workdir / f"swarm_{s}" / f"gso_{config.steps}.out") for s in range(n_swarms)]
    translations = np.concatenate([p[0] for p in parts])
    rotations = quaternion_to_matrix(np.concatenate([p[1] for p in parts]))
    scores = np.concatenate([p[2] for p in parts])
    swarms = np.concatenate([np.full(len(p[2]), s) for s, p in enumerate(parts)])
    centre = base.coords[mask].mean(axis=0)
    moves = (centre - ligand_centre) @ np.transpose(rotations, (0, 2, 1)) + translations + receptor_centre - centre
    return rotations, moves, scores, swarms


def true_interface_restraints(base: Complex, ligand_chain: str) -> str:
    """LightDock restraints file (``R``/``L`` ``chain.RES.number[insertion]`` lines) of the base's interface
    residues: those with a heavy atom within CONTACT_CUTOFF Å of the other chain (module doc)."""
    mask = ligand_mask(base, ligand_chain)
    heavy = base.elements != "H"
    starts = base.residue_starts  # residue i's first atom (residue indices run 0..n-1 in file order)
    lines = []
    for side, own, other in (("R", ~mask & heavy, mask & heavy), ("L", mask & heavy, ~mask & heavy)):
        rows = np.flatnonzero(own)
        near = cKDTree(base.coords[other]).query(base.coords[rows], distance_upper_bound=CONTACT_CUTOFF)[0]
        firsts = starts[np.unique(base.residue_index[rows[np.isfinite(near)]])]
        lines += [f"{side} {base.chain_ids[i]}.{base.res_names[i]}.{int(base.res_seq[i])}"
                  f"{str(base.ins_codes[i]).strip()}" for i in firsts]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------


def distinct_by_score(ligand_ca: np.ndarray, scores: np.ndarray, min_rmsd: float) -> np.ndarray:
    """Indices of poses kept by greedy thinning in order of decreasing score: a pose is kept when its
    ligand Cα coordinates (m, n_ca, 3) Å lie at least ``min_rmsd`` Å RMSD from every pose kept before it."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if kept:
            rmsd = np.sqrt(np.mean(np.sum((ligand_ca[kept] - ligand_ca[i]) ** 2, axis=-1), axis=-1))
            if rmsd.min() < min_rmsd:
                continue
        kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def select_pool(distinct: np.ndarray, dockq: np.ndarray, config: PoolConfig) -> tuple[np.ndarray, np.ndarray]:
    """(members in pool order, their source index into :data:`SOURCES`) from the distinct poses in score
    order: the ``n_top`` first, then up to ``n_near`` later ones with DockQ ≥ acceptable."""
    top = distinct[:config.n_top]
    later = distinct[config.n_top:]
    near = later[dockq[later] >= CAPRI_THRESHOLDS[0]][:config.n_near]
    return np.r_[top, near], np.r_[np.zeros(len(top), int), np.ones(len(near), int)]


def build_pool(base: Complex, base_file: Path, native_file: Path, config: PoolConfig, seed: int,
               workdir: Path, source_file: Path | None = None) -> DockedPool:
    """Dock ``base`` (written in ``base_file``) with LightDock, label every pose against ``native_file``
    and pick the pool (module doc)."""
    ligand_chain = default_ligand_chain(base)
    receptor_chain = next(c for c in base.chain_names if c != ligand_chain)
    rotations, translations, scores, swarms = dock(base, ligand_chain, config, seed, workdir)
    mask = ligand_mask(base, ligand_chain)
    centre = base.coords[mask].mean(axis=0)
    ca = base.coords[mask & (base.atom_names == "CA")]
    ligand_ca = (ca - centre) @ np.transpose(rotations, (0, 2, 1)) + centre + translations[:, None, :]
    labeller = DockQLabeller(base, base_file, native_file)
    labels = [labeller.score(apply_pose(base.coords, mask, r, t, centre)) for r, t in zip(rotations, translations)]
    dockq, fnat, irmsd, lrmsd = (np.array([row[k] for row in labels], dtype=np.float64) for k in range(4))
    members, sources = select_pool(distinct_by_score(ligand_ca, scores, config.distinct_rmsd), dockq, config)
    pool_rank = np.full(len(scores), -1, dtype=np.int64)
    pool_rank[members] = np.arange(len(members))
    source = np.full(len(scores), -1, dtype=np.int64)
    source[members] = sources
    return DockedPool(rotations, translations, centre, scores, swarms, dockq, fnat, irmsd, lrmsd,
                      np.array([row[4] for row in labels]), pool_rank, source, ligand_chain, receptor_chain, seed,
                      file_sha256(base_file) or "", file_sha256(native_file) or "",
                      (file_sha256(source_file) or "") if source_file else "", _params(config))


def _params(config: PoolConfig) -> str:
    return json.dumps({**asdict(config), "lightdock": LIGHTDOCK_VERSION, "scoring": "fastdfire"}, sort_keys=True)


def save_pool(path: Path, pool: DockedPool) -> None:
    """Write ``pool`` to ``path`` (.npz, no pickles) atomically."""
    arrays = {name: np.asarray(getattr(pool, name)) for name in _ARRAYS}
    arrays.update(centre=np.asarray(pool.centre), seed=np.asarray(pool.seed, dtype=np.int64),
                  format=np.asarray(POOL_FORMAT), source_names=np.asarray(SOURCES))
    for name in ("ligand_chain", "receptor_chain", "base_sha256", "native_sha256", "source_sha256", "params"):
        arrays[name] = np.asarray(str(getattr(pool, name)))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_pool(path: Path) -> DockedPool:
    """Read a file written by :func:`save_pool` (``allow_pickle=False``); ValueError if it is not one."""
    with np.load(path, allow_pickle=False) as data:
        if "format" not in data.files or str(data["format"]) != POOL_FORMAT:
            raise ValueError(f"{path}: not an egr docking pool ({POOL_FORMAT})")
        scalars = {name: str(data[name]) for name in ("ligand_chain", "receptor_chain", "base_sha256",
                                                      "native_sha256", "source_sha256", "params")}
        return DockedPool(**{name: data[name] for name in _ARRAYS}, centre=data["centre"], seed=int(data["seed"]),
                          **scalars)


# --------------------------------------------------------------------------------------------
# `egr dock-pools`
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolJob(TargetBase):
    """One base to dock with LightDock, seeded with ``seed``."""

    seed: int
    config: PoolConfig = field(default_factory=PoolConfig)

    @property
    def pool_npz(self) -> Path:
        return self.outdir / self.set_name / f"{self.base_id}.pool.npz"

    def decoy_id(self, rank: int) -> str:
        return f"{self.base_id}_lightdock{rank + 1:02d}"


def plan_pool_jobs(root: Path, splits_file: Path, outdir: Path, splits: Sequence[str], seed: int,
                   config: PoolConfig, sets: Sequence[str], max_targets: int | None = None
                   ) -> tuple[list[PoolJob], list[dict]]:
    """One base per target of ``splits`` in ``sets``: BM5's unbound partners, else the native (the same
    bases as :func:`egr.poses.plan_jobs`, one per target). ``max_targets``: per split, only the first that
    many targets of an order shuffled by ``seed``, drawn among the targets of ``sets`` found under ``root``
    (the same subset for the same seed, splits file, sets and data)."""
    bases, skipped = plan_jobs(root, splits_file, outdir, splits, 1, seed)
    chosen: dict[tuple[str, str], BaseJob] = {}
    for job in bases:
        key = (job.set_name, job.target)
        if job.set_name in sets and (key not in chosen or job.base_id.endswith("_unbound")):
            chosen[key] = job
    jobs = [PoolJob(job.set_name, job.target, job.base_id, job.split, job.source, job.native, Path(outdir),
                    _derive_seed(seed, "lightdock", job.set_name, job.target), config) for job in chosen.values()]
    if max_targets is not None:
        kept = []
        for split in splits:
            of_split = sorted((j for j in jobs if j.split == split), key=lambda j: (j.set_name, j.target))
            order = np.random.default_rng(_derive_seed(seed, "pool targets", split)).permutation(len(of_split))
            kept += [of_split[i] for i in sorted(order[:max_targets])]
        jobs = kept
    # a BM5 target without its unbound partners docks its native instead: only whole-target skips remain
    skipped = [row for row in skipped if row["set"] in sets and not row["base_id"]]
    return jobs, skipped


def _existing(job: PoolJob) -> DockedPool | None:
    if not (job.base_pdb.is_file() and job.pool_npz.is_file()):
        return None
    try:
        pool = load_pool(job.pool_npz)
    except (OSError, ValueError, KeyError):
        return None
    same = (pool.seed == job.seed and pool.params == _params(job.config)
            and pool.base_sha256 == file_sha256(job.base_pdb) and pool.source_sha256 == file_sha256(job.source)
            and pool.native_sha256 == file_sha256(job.native))
    return pool if same else None


def run_pool_job(job: PoolJob) -> tuple[list[dict] | None, str | None, bool]:
    """Dock one base and write its pool's decoys: (pool.tsv rows, None, reused) or (None, reason, False)."""
    try:
        pool = _existing(job)
        reused = pool is not None
        if pool is None:
            base, _ = read_decoy(job.source)
            if len(base.chain_names) != 2:
                raise ValueError(f"{len(base.chain_names)} protein chains; docking pools need 2")
            write_pdb(base, job.base_pdb, remarks=[f"egr dock-pools base {job.base_id} cleaned from {job.source.name}"])
        base, _ = read_decoy(job.base_pdb)  # dock exactly the coordinates the file holds
        if pool is None:
            with tempfile.TemporaryDirectory(prefix="egr-lightdock-") as scratch:
                pool = build_pool(base, job.base_pdb, job.native, job.config, job.seed, Path(scratch), job.source)
            save_pool(job.pool_npz, pool)
        mask = ligand_mask(base, pool.ligand_chain)
        rows = []
        for rank, i in enumerate(pool.members()):
            decoy = job.outdir / "decoys" / f"{job.decoy_id(rank)}.pdb"
            if not decoy.is_file():
                coords = apply_pose(base.coords, mask, pool.rotations[i], pool.translations[i], pool.centre)
                write_pdb(base.with_coords(coords), decoy, remarks=[
                    f"LightDock {LIGHTDOCK_VERSION} pose {i} of {job.base_id} (egr dock-pools, seed {job.seed})"])
            rows.append({"id": job.decoy_id(rank), "set": job.set_name, "target": job.target, "base_id": job.base_id,
                         "split": job.split, "source": SOURCES[int(pool.source[i])],
                         "lightdock_score": round(float(pool.score[i]), 4), "dockq": round(float(pool.dockq[i]), 4),
                         "fnat": round(float(pool.fnat[i]), 4), "irmsd": round(float(pool.irmsd[i]), 3),
                         "lrmsd": round(float(pool.lrmsd[i]), 3),
                         "capri_class": CLASS_NAMES[int(capri_class(pool.dockq[i]))],
                         # as egr run reads a samplesheet: relative to its folder (OUTDIR), or absolute
                         "decoy": str(decoy.relative_to(job.outdir)), "native": str(job.native.resolve())})
        return rows, None, reused
    except Exception as error:  # one base that cannot be docked must not stop the others; the reason is kept
        text = str(error).splitlines()[0] if str(error) else ""
        return None, f"{type(error).__name__}: {text}", False


def dock_dataset(root: Path, splits_file: Path, outdir: Path, splits: Sequence[str] = ("val", "test"),
                 sets: Sequence[str] = ("bm5", "dips"), seed: int = 0, workers: int = 1,
                 config: PoolConfig = PoolConfig(), progress: Callable[[str], None] | None = None,
                 max_targets: int | None = None) -> dict:
    """Body of ``egr dock-pools``: a LightDock pool per target, and the tables of the module doc.
    Returns {rows, skipped, reused, seconds}."""
    available, reason = lightdock_available()
    if not available:
        raise RuntimeError(reason)
    began = time.perf_counter()
    outdir = Path(outdir)
    jobs, skipped = plan_pool_jobs(root, splits_file, outdir, splits, seed, config, sets, max_targets)
    rows: list[dict] = []
    reused = 0
    for job, (job_rows, why, was_reused) in run_jobs(run_pool_job, jobs, workers):
        if job_rows is None:
            skipped.append(job.skipped_row(why))
        else:
            rows += job_rows
            reused += was_reused
        if progress is not None:
            found = sum(r["capri_class"] != "incorrect" for r in job_rows or [])
            progress(f"{job.set_name}/{job.base_id}: " + (f"failed: {why}" if job_rows is None else
                                                           f"{len(job_rows)} poses, {found} acceptable or better"))
    rows.sort(key=lambda r: r["id"])
    atomic_write_table(outdir / "pool.tsv", POOL_HEADER, rows)
    write_samplesheet(outdir / "samplesheet.csv", rows)
    atomic_write_table(outdir / "lightdock_scores.tsv", ("id", "lightdock_score"), rows)
    atomic_write_table(outdir / "skipped.tsv", SKIPPED_HEADER, skipped)
    return {"rows": rows, "skipped": skipped, "reused": reused, "seconds": time.perf_counter() - began}
