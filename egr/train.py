"""Training and evaluation of EGR on prepared decoys (``egr train``, ``egr evaluate``).

Two kinds of optimiser step, shuffled together in every epoch.

**Docking-quality steps** teach the docking head (:meth:`egr.model.EGR.docking_logits`) to tell right
poses from wrong ones *of the same target*. Each step takes one family of structures of one target,
either a base's sampled rigid-body poses (:mod:`egr.poses`, ``groups_per_base`` steps per base and
epoch), the poses LightDock returned for a base (:mod:`egr.dock_pools`: all of them or, with ``pool_poses =
"members"``, the pool's members; ``groups_per_pool`` steps per pool and epoch) or a training target's real
docking decoys (``groups_per_real_target`` steps per target and epoch, targets with ≥ 2 decoys), draws ``group_size`` of them stratified over their DockQ (so every group has good and bad
poses), adds noise σ to the coordinates and scores each one's interface crop (:mod:`egr.interface`).
With p = predicted DockQ (mean over interfaces of sigmoid(logit)) and q = true DockQ:

    L_dock = BCE(p, q) + w_rank · mean over pairs with q_i > q_j + rank_min_gap of softplus(−(logit p_i − logit p_j))

scaled by ``docking_weight``: a regression on DockQ plus a pairwise ranking loss within the target.

With ``head_only`` (a fine-tune of the docking head on the features of given weights' layers) the
docking steps update the head alone and there are no refinement steps.

**Refinement steps**, one per prepared training decoy (docs/design.md, "EGR, precisely"), on one graph:

    L = Huber_δ(‖X' − X*‖) over atoms with a native partner          (δ = 1 Å; X* = native in the decoy frame)
      + w · MSE(QA(refined), LDDT-Cα(X'_Cα vs native))               (QA of the normal pass)
      + w_in · MSE(QA(input), LDDT-Cα(X_Cα vs native))                (QA of the input pass, egr.gate)

* X is the decoy plus Gaussian noise (σ ≈ 0.1 Å, "noisy nodes"); the edge features stay those of the
  clean decoy. Optionally one randomly chosen chain is first moved as a rigid body (a rotation of up to
  ``rigid_rotation_deg`` about its centroid and a shift of up to ``rigid_translation`` Å); the graph is then
  rebuilt (k-NN edges and edge features from the moved coordinates; surface proximity is per chain, so a
  rigid move leaves it unchanged) and the targets stay where they were, so the model learns to undo
  docking-like errors as well as conformational ones.
* The LDDT-Cα labels are computed in the loop from the current Cα coordinates (:func:`egr.dataset.lddt_ca_torch`):
  the QA head always learns the quality of the structure it is reporting on. The labels carry no
  gradient; a soft (differentiable) label would let the QA term pull coordinates towards the QA head's
  own guess.
* The coordinate term applies only to decoys with DockQ ≥ ``coord_min_dockq`` (acceptable or better):
  an incorrect decoy's partner sits tens of Å from its native place, which no local refinement can
  reach, and its huge Huber term would swamp the rest. Incorrect decoys still train both QA terms,
  which is what the gate needs to learn that they cannot be rescued.

Optimiser AdamW (lr 1e-4); validation after every epoch on the real validation decoys: Cα/all-atom RMSD
of refined vs native, QA Pearson correlations, ΔDockQ on the first ``val_dockq_decoys`` validation decoys,
and the docking estimate's ranking figures (Spearman with DockQ over all decoys, ROC AUC for acceptable,
ranking loss per target) beside the contacts−clashes reference (:mod:`egr.physics`), and, where a pose
folder is given, the mean per-base Spearman over ``val_poses_per_base`` sampled poses of each validation
base (:func:`pose_validation`), and where LightDock pool folders are given, the validation pools' AUC for
acceptable (:func:`pool_validation`). The checkpoint with the highest validation Spearman of predicted vs true
DockQ (real decoys, averaged with the sampled poses' figure and the pools' 2 · AUC − 1 where there are
those: 51 real decoys alone move by ±0.05 between neighbouring epochs) is kept as ``best.safetensors`` (+
``.json``); ``last.pt`` holds the model, optimiser and history after every epoch, and ``resume=True`` continues from it. Shuffling, noise and
perturbations of epoch e draw from a generator seeded with (seed, e), so a resumed run reproduces an
uninterrupted one exactly.

Multi-GPU: launch the same command under ``torchrun --nproc_per_node=N``; every process trains on its
share of each epoch's shuffled decoys through :class:`torch.nn.parallel.DistributedDataParallel`
(NCCL on GPUs, Gloo on CPUs), rank 0 validates and writes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from egr.dataset import Example, load_example, lddt_ca_torch, read_index
from egr.dock_pools import DockedPool, load_pool
from egr.evaluate import CAPRI_CLASSES, Ranker, dockq_improved, qa_tables, roc_auc
from egr.gate import GATE_KEY, gate_record, keeps_refinement, stored_margin
from egr.graph import ALL_ATOM_SCHEMA, batch_docking, docking_input, featurize, surface_proximity
from egr import layout
from egr.io import atomic_write_bytes, atomic_write_json, atomic_write_text, file_sha256
from egr.metrics import ScoringError, dockq_scores
from egr.model import EGR, EGRConfig
from egr.physics import CLASH_WEIGHT, interface_physics
from egr.poses import load_poses, pose_coords
from egr.refine import docking_estimates
from egr.split import split_of_targets
from egr.structure import Complex, read_decoy, write_pdb
from egr.surface import compute_surface
from egr.weights import load_model, save_weights

CHECKPOINT_FORMAT = "egr-train-checkpoint/1"
# DockQ ≥ 0.23 is CAPRI "acceptable": the threshold under which a decoy is considered unrefinable.
ACCEPTABLE_DOCKQ = CAPRI_CLASSES["acceptable"]
POOL_POSES = ("all", "members")  # TrainConfig.pool_poses
HEAD_PARAMETERS = ("dock_norm.", "dock_head.")  # what TrainConfig.head_only trains: the docking head's weights


@dataclass
class TrainConfig:
    """Hyperparameters of a training run (plain scalars, saved in checkpoints and the weights' sidecar).

    Model: hidden, num_layers, heads (EGRConfig). Loss: huber_delta (Å), lddt_weight (w),
    input_qa_weight (w_in; 0 skips the input pass), coord_min_dockq. Augmentation: noise_sigma (Å),
    rigid_rotation_deg (°), rigid_translation (Å), both 0 = off. Data: max_atoms (larger training decoys are
    skipped, to bound time and memory), val_dockq_decoys, val_poses_per_base (sampled poses per validation
    base in the checkpoint criterion; 0 = real decoys only). Docking steps: group_size, groups_per_base
    (per sampled base), groups_per_pool (per LightDock pool), pool_poses (every pose LightDock returned,
    ``"all"``, or the pool's members), groups_per_real_target. head_only: train the docking head alone
    (:data:`HEAD_PARAMETERS`; no refinement steps, every other weight kept as initialised or loaded).
    Optimiser: lr, weight_decay, grad_clip (max gradient norm; 0 = off), epochs, seed.
    """

    hidden: int = 64
    num_layers: int = 4
    heads: int = 4
    epochs: int = 10
    lr: float = 1e-4
    weight_decay: float = 1e-2
    grad_clip: float = 10.0
    huber_delta: float = 1.0
    lddt_weight: float = 0.02
    input_qa_weight: float = 0.02
    coord_min_dockq: float = ACCEPTABLE_DOCKQ
    noise_sigma: float = 0.1
    rigid_rotation_deg: float = 0.0
    rigid_translation: float = 0.0
    max_atoms: int = 12000
    val_dockq_decoys: int = 6
    docking_weight: float = 1.0
    ranking_weight: float = 1.0
    rank_min_gap: float = 0.05
    group_size: int = 8
    groups_per_base: int = 2
    groups_per_real_target: int = 1
    groups_per_pool: int = 1
    pool_poses: str = "all"  # which poses of a training LightDock pool the docking steps draw: "all" or "members"
    val_poses_per_base: int = 24
    head_only: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pool_poses not in POOL_POSES:
            raise ValueError(f"pool_poses must be one of {', '.join(POOL_POSES)}, not {self.pool_poses!r}")

    def model_config(self) -> EGRConfig:
        return EGRConfig(node_in=ALL_ATOM_SCHEMA.node_in, edge_in=ALL_ATOM_SCHEMA.edge_in, hidden=self.hidden,
                         num_layers=self.num_layers, heads=self.heads)


@dataclass(frozen=True)
class DataSelection:
    """Prepared decoys (rows of the cache's ``index.tsv``) of each split."""

    cache: Path
    train: list[dict]
    val: list[dict]
    test: list[dict]


def select_data(cache: Path, splits_file: Path, max_atoms: int | None = None) -> DataSelection:
    """Rows of ``cache/index.tsv`` per split of ``splits_file``; ``max_atoms`` filters the training rows only.

    Rows are sorted by (set, target, decoy_id), so the selection does not depend on the index's order.
    """
    split_of = split_of_targets(splits_file)
    rows = sorted(read_index(cache), key=lambda r: (r["set"], r["target"], r["decoy_id"]))
    missing = sorted({f"{r['set']}/{r['target']}" for r in rows} - {f"{s}/{t}" for s, t in split_of})
    if missing:
        raise ValueError(f"{splits_file}: no split for prepared target(s) {', '.join(missing[:5])}")
    by_split = {name: [r for r in rows if split_of[(r["set"], r["target"])] == name] for name in ("train", "val", "test")}
    if max_atoms is not None:
        by_split["train"] = [r for r in by_split["train"] if int(r["n_atoms"]) <= max_atoms]
    return DataSelection(Path(cache), by_split["train"], by_split["val"], by_split["test"])


def huber_distance(pred: Tensor, target: Tensor, delta: float) -> Tensor:
    """Mean Huber loss of per-atom distances ‖pred − target‖ (Å): rotation-invariant, unlike a per-component loss.

    pred, target (m, 3). 0.5·d² for d ≤ δ, δ·(d − 0.5·δ) beyond.
    """
    # a tiny floor under the square root keeps the gradient finite where pred == target
    d = torch.sqrt((pred - target).square().sum(1) + 1e-12)
    return F.huber_loss(d, torch.zeros_like(d), delta=delta)


def residue_ca(pos: Tensor, ca_node: Tensor) -> Tensor:
    """(n_residues, 3) Cα coordinates from node coordinates (rows of residues without a Cα are node 0's; the
    LDDT pairs never refer to them)."""
    return pos[ca_node.clamp(min=0)]


def _qa_mse(qa: Tensor, ca_node: Tensor, label: Tensor) -> Tensor:
    valid = (ca_node >= 0) & torch.isfinite(label)
    if not valid.any():
        return qa.sum() * 0.0
    return F.mse_loss(qa[ca_node[valid]], label[valid])


class _TwoPass(nn.Module):
    """The normal pass and (optionally) the input pass of :mod:`egr.gate` in one module, or the docking head
    (``docking=`` the keyword arguments of :meth:`EGR.docking_logits`), so that DistributedDataParallel
    sees one forward per step."""

    def __init__(self, model: EGR, input_pass: bool) -> None:
        super().__init__()
        self.model = model
        self.input_pass = input_pass

    def forward(self, x: Tensor | None = None, pos: Tensor | None = None, edge_index: Tensor | None = None,
                edge_attr: Tensor | None = None, docking: dict | None = None):
        if docking is not None:
            return self.model.docking_logits(**docking)
        if self.input_pass:
            return self.model.forward_with_input_pass(x, pos, edge_index, edge_attr)
        refined, qa = self.model(x, pos, edge_index, edge_attr)
        return refined, qa, None


@dataclass(frozen=True)
class DockingFamily:
    """Structures of one target that the docking steps rank against each other (module doc).

    Either rigid poses of one base (``base``, ``poses``: an :class:`egr.poses.PoseSet` of sampled poses or
    an :class:`egr.dock_pools.DockedPool` of LightDock's poses) or real decoys (``decoys``: complexes);
    ``proximity`` per member or shared by the poses; ``dockq`` (size,) the truth.
    """

    key: str
    dockq: np.ndarray
    proximity: list[np.ndarray]
    base: Complex | None = None
    poses: object | None = None
    decoys: tuple[Complex, ...] = ()

    @property
    def docked(self) -> bool:
        """Whether the members are a docking program's poses (a LightDock pool)."""
        return isinstance(self.poses, DockedPool)

    def member(self, i: int) -> tuple[Complex, np.ndarray]:
        """The i-th structure and its per-atom surface proximity."""
        if self.base is not None:
            return self.base.with_coords(pose_coords(self.base, self.poses, i)), self.proximity[0]
        return self.decoys[i], self.proximity[i]

    def draw(self, k: int, generator: torch.Generator) -> list[int]:
        """``k`` members, one from each of k DockQ strata (all members where there are at most k)."""
        order = np.argsort(self.dockq, kind="stable")
        if len(order) <= k:
            return order.tolist()
        strata = np.array_split(order, k)
        picks = torch.rand(k, generator=generator, dtype=torch.float64).numpy()
        return [int(stratum[int(p * len(stratum))]) for stratum, p in zip(strata, picks)]


def real_families(cache: Path, rows: Sequence[dict]) -> list[DockingFamily]:
    """One family per target with at least two prepared decoys among ``rows``."""
    by_target: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_target.setdefault((row["set"], row["target"]), []).append(row)
    families = []
    for (set_name, target), members in sorted(by_target.items()):
        if len(members) < 2:
            continue
        examples = [load_example(cache, row) for row in members]
        families.append(DockingFamily(
            key=f"{set_name}/{target}", dockq=np.array([e.dockq for e in examples]),
            proximity=[surface_proximity(e.graph) for e in examples],
            decoys=tuple(e.complex for e in examples)))
    return families


def _base_and_proximity(folder: Path, base_id: str, surface_backend: str) -> tuple[Complex, np.ndarray]:
    """The base ``folder/<base_id>.base.pdb`` and its per-atom surface proximity, computed once and kept beside
    it (``<base_id>.surface.npz``)."""
    base, _ = read_decoy(folder / f"{base_id}.base.pdb")
    proximity_file = folder / f"{base_id}.surface.npz"
    if proximity_file.is_file():
        return base, np.load(proximity_file, allow_pickle=False)["proximity"]
    proximity = compute_surface(base.coords, base.elements, base.chain_ids, backend=surface_backend).proximity
    buffer = io.BytesIO()
    np.savez(buffer, proximity=proximity)
    atomic_write_bytes(proximity_file, buffer.getvalue())
    return base, proximity


def _bases_in_split(table: Path, splits_file: Path, split: str) -> list[tuple[str, str]]:
    """(set, base_id) of the rows of a tab-separated ``table`` (columns set, target, base_id) whose target
    is in ``split``, each base once, sorted."""
    split_of = split_of_targets(splits_file)
    with open(table, newline="") as handle:
        return sorted({(r["set"], r["base_id"]) for r in csv.DictReader(handle, delimiter="\t")
                       if split_of.get((r["set"], r["target"])) == split})


def pose_families(poses_dir: Path, splits_file: Path, split: str, surface_backend: str = "auto") -> list[DockingFamily]:
    """The sampled-pose families (``egr sample-poses`` output) of targets in ``split``."""
    families = []
    for set_name, base_id in _bases_in_split(Path(poses_dir) / "index.tsv", splits_file, split):
        folder = Path(poses_dir) / set_name
        poses_file = folder / f"{base_id}.poses.npz"
        if not poses_file.is_file():
            continue
        base, proximity = _base_and_proximity(folder, base_id, surface_backend)
        poses = load_poses(poses_file)
        families.append(DockingFamily(key=f"{set_name}/{base_id}", dockq=np.asarray(poses.dockq),
                                      proximity=[proximity], base=base, poses=poses))
    return families


def pool_families(pools_dir: Path, splits_file: Path, split: str, members_only: bool = False,
                  surface_backend: str = "auto") -> list[DockingFamily]:
    """The LightDock families (``egr dock-pools`` output) of targets in ``split``: every pose LightDock
    returned for a base, labelled with its DockQ (the pool's members are :meth:`DockedPool.members`), or
    with ``members_only`` the pool's members alone."""
    families = []
    for set_name, base_id in _bases_in_split(Path(pools_dir) / "pool.tsv", splits_file, split):
        folder = Path(pools_dir) / set_name
        base, proximity = _base_and_proximity(folder, base_id, surface_backend)
        pool = load_pool(folder / f"{base_id}.pool.npz")
        if members_only:
            pool = pool.only_members()
        families.append(DockingFamily(key=f"{set_name}/{base_id}", dockq=np.asarray(pool.dockq),
                                      proximity=[proximity], base=base, poses=pool))
    return families


def docking_loss(net: nn.Module, family: DockingFamily, cfg: TrainConfig, generator: torch.Generator,
                 device: torch.device) -> tuple[Tensor, dict[str, float]]:
    """Docking loss (module doc) of one group drawn from ``family``."""
    chosen = family.draw(cfg.group_size, generator)
    inputs = []
    for i in chosen:
        c, proximity = family.member(i)
        noise = torch.randn(c.coords.shape, generator=generator, dtype=torch.float64).numpy() * cfg.noise_sigma
        inputs.append(docking_input(c.with_coords(c.coords + noise), proximity))
    pred = group_dockq(lambda batch: net(docking=batch), inputs, device).clamp(1e-6, 1 - 1e-6)
    truth = torch.as_tensor(family.dockq[chosen], dtype=pred.dtype, device=device)
    regression = F.binary_cross_entropy(pred, truth)
    score = torch.logit(pred)
    ordered = (truth[:, None] - truth[None, :]) > cfg.rank_min_gap
    ranking = F.softplus(score[None, :] - score[:, None])[ordered].mean() if ordered.any() else score.sum() * 0.0
    loss = cfg.docking_weight * (regression + cfg.ranking_weight * ranking)
    return loss, {"dock_bce": float(regression.detach()), "dock_rank": float(ranking.detach())}


def group_dockq(logits_of: Callable[[dict], Tensor], inputs: Sequence[dict], device: torch.device) -> Tensor:
    """(len(inputs),) predicted DockQ of docking inputs (:func:`egr.graph.docking_input`) batched into one
    pass: ``logits_of`` maps the batch's tensors to per-interface logits; each structure's interfaces are
    averaged after the sigmoid."""
    batch = batch_docking(inputs)
    owner = batch.pop("owner").to(device)
    logits = logits_of({k: v.to(device) for k, v in batch.items()})
    return structure_means(torch.sigmoid(logits), owner, len(inputs))


def epoch_steps(n_decoys: int, families: Sequence[DockingFamily], cfg: TrainConfig) -> list[tuple[str, int]]:
    """One epoch's steps before shuffling: ("decoy", i) per refinement decoy, ("family", j) per docking group
    (``groups_per_base`` per sampled base, ``groups_per_pool`` per LightDock pool, ``groups_per_real_target``
    per family of real decoys); no refinement steps with ``head_only``."""
    steps = [] if cfg.head_only else [("decoy", i) for i in range(n_decoys)]

    def repeats(family: DockingFamily) -> int:
        if family.docked:
            return cfg.groups_per_pool
        return cfg.groups_per_base if family.base is not None else cfg.groups_per_real_target

    steps += [("family", j) for j, f in enumerate(families) for _ in range(repeats(f))]
    return steps


def structure_means(values: Tensor, owner: Tensor, n: int) -> Tensor:
    """Mean of per-interface ``values`` (G,) per structure ``owner`` (G,) → (n,)."""
    total = values.new_zeros(n).index_add(0, owner, values)
    return total / torch.bincount(owner, minlength=n).clamp(min=1).to(values.dtype)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # one independent stream per (seed, epoch): resuming at epoch e needs no saved RNG state
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


def rigid_perturbation(example: Example, cfg: TrainConfig, generator: torch.Generator) -> Example:
    """Move one random chain of the decoy as a rigid body and rebuild its graph (see the module doc)."""
    c = example.complex
    chain = int(torch.randint(c.chain_index.max() + 1, (1,), generator=generator))
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    angle = math.radians(cfg.rigid_rotation_deg) * float(torch.rand(1, generator=generator, dtype=torch.float64))
    direction = torch.randn(3, generator=generator, dtype=torch.float64)
    shift = cfg.rigid_translation * float(torch.rand(1, generator=generator, dtype=torch.float64))
    rotation = _axis_angle_matrix(axis.numpy(), angle)
    members = c.chain_index == chain
    coords = c.coords.copy()
    centre = coords[members].mean(0)
    coords[members] = (coords[members] - centre) @ rotation.T + centre + shift * direction.numpy() / np.linalg.norm(direction.numpy())
    moved = c.with_coords(coords)
    proximity = surface_proximity(example.graph)
    bundle = featurize(example.meta["decoy_id"], moved, proximity, np.full(c.n_atoms, "n/a"))
    return replace(example, graph=bundle.graph, complex=moved)


def _axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix (3, 3) for ``angle`` radians about ``axis`` (Rodrigues' formula)."""
    k = axis / np.linalg.norm(axis)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * cross @ cross


def training_loss(net: nn.Module, example: Example, cfg: TrainConfig, generator: torch.Generator,
                  device: torch.device) -> tuple[Tensor, dict[str, float]]:
    """Loss of one decoy (module doc) and its parts as floats. ``net`` is a :class:`_TwoPass` (maybe DDP-wrapped)."""
    if cfg.rigid_rotation_deg > 0 or cfg.rigid_translation > 0:
        example = rigid_perturbation(example, cfg, generator)
    g = example.graph
    noise = torch.randn(g.pos.shape, generator=generator) * cfg.noise_sigma
    pos = (g.pos + noise).to(device)
    refined, qa, qa_input = net(g.x.to(device), pos, g.edge_index.to(device), g.edge_attr.to(device))
    mask, target = example.target_mask.to(device), example.target_pos.to(device)
    ca_node = example.ca_node.to(device)
    pairs, native_dist, total = (example.lddt_pairs.to(device), example.lddt_native_dist.to(device),
                                 example.lddt_total.to(device))
    with torch.no_grad():
        lddt_refined = lddt_ca_torch(residue_ca(refined, ca_node), pairs, native_dist, total)
    parts = {"qa": _qa_mse(qa, ca_node, lddt_refined)}
    use_coords = example.dockq >= cfg.coord_min_dockq and bool(mask.any())
    parts["coord"] = huber_distance(refined[mask], target[mask], cfg.huber_delta) if use_coords else refined.sum() * 0.0
    loss = parts["coord"] + cfg.lddt_weight * parts["qa"]
    if qa_input is not None:
        with torch.no_grad():
            lddt_input = lddt_ca_torch(residue_ca(pos, ca_node), pairs, native_dist, total)
        parts["qa_input"] = _qa_mse(qa_input, ca_node, lddt_input)
        loss = loss + cfg.input_qa_weight * parts["qa_input"]
    return loss, {k: float(v.detach()) for k, v in parts.items()}


@dataclass
class DecoyResult:
    """Evaluation of one decoy: RMSDs to the native (Å, over atoms with a native partner), LDDT-Cα,
    pLDDT, EGR's predicted DockQ of the input and of the refined structure, the contacts−clashes
    reference score of the input, and DockQ (None where not scored)."""

    set_name: str
    target: str
    decoy_id: str
    n_atoms: int
    rmsd_input: float
    rmsd_refined: float
    ca_rmsd_input: float
    ca_rmsd_refined: float
    lddt_input: float
    lddt_refined: float
    plddt_input: float
    plddt_refined: float
    pred_dockq_input: float | None
    pred_dockq_refined: float | None
    contacts_clashes: float
    qa_pearson: float | None
    dockq_input: float
    dockq_refined: float | None = None
    residue_qa: dict = field(default_factory=dict, repr=False)  # pooled later for QA correlations

    @property
    def predicted_gain(self) -> float:
        """pred_dockq(refined) − pred_dockq(input), the never-worse gate's input (NaN where undefined)."""
        if self.pred_dockq_input is None or self.pred_dockq_refined is None:
            return math.nan
        return self.pred_dockq_refined - self.pred_dockq_input

    def delta_dockq(self, margin: float) -> float | None:
        """ΔDockQ after the gate with ``margin`` (0 where the gate falls back to the input)."""
        if self.dockq_refined is None:
            return None
        return self.dockq_refined - self.dockq_input if keeps_refinement(self.predicted_gain, margin) else 0.0


def _rmsd(a: Tensor, b: Tensor) -> float:
    return float(torch.sqrt((a - b).square().sum(1).mean())) if len(a) else math.nan


@torch.no_grad()
def evaluate_example(model: EGR, example: Example, device: torch.device, score_dockq: bool) -> DecoyResult:
    """Refine one decoy (no noise) and measure it against its native (see :class:`DecoyResult`)."""
    g = example.graph.to(device)
    passes = model.passes(g.x, g.pos, g.edge_index, g.edge_attr)
    refined, qa, qa_input, pos = passes.coords.cpu(), passes.qa.cpu(), passes.qa_input.cpu(), g.pos.cpu()
    m, ca_node = example.target_mask, example.ca_node
    ca_mask = torch.zeros_like(m)
    ca_mask[ca_node[ca_node >= 0]] = True
    ca_mask &= m
    args = (example.lddt_pairs, example.lddt_native_dist, example.lddt_total)
    lddt_in = lddt_ca_torch(residue_ca(pos, ca_node), *args)
    lddt_out = lddt_ca_torch(residue_ca(refined, ca_node), *args)
    valid = (ca_node >= 0) & torch.isfinite(lddt_out)
    qa_res, qa_in_res = qa[ca_node[valid]].numpy(), qa_input[ca_node[valid]].numpy()
    true_out, true_in = lddt_out[valid].numpy(), lddt_in[valid].numpy()
    correlated = len(qa_res) > 2 and np.ptp(qa_res) > 0 and np.ptp(true_out) > 0
    refined_complex = example.complex.with_coords(refined.double().numpy())
    docking_in, docking_out = docking_estimates(model, example.complex, passes, device)
    dockq_refined = None
    if score_dockq:
        with tempfile.TemporaryDirectory(prefix="egr-val-") as scratch:
            path = layout.refined_pdb(scratch, example.meta["decoy_id"])
            write_pdb(refined_complex, path)
            try:
                dockq_refined = float(dockq_scores(path, Path(example.meta["native"]))["global_dockq"])
            except ScoringError:
                dockq_refined = None
    return DecoyResult(
        set_name=example.meta["set"], target=example.meta["target"], decoy_id=example.meta["decoy_id"],
        n_atoms=int(len(pos)), rmsd_input=_rmsd(pos[m], example.target_pos[m]),
        rmsd_refined=_rmsd(refined[m], example.target_pos[m]),
        ca_rmsd_input=_rmsd(pos[ca_mask], example.target_pos[ca_mask]),
        ca_rmsd_refined=_rmsd(refined[ca_mask], example.target_pos[ca_mask]),
        lddt_input=float(np.mean(true_in)) if len(true_in) else math.nan,
        lddt_refined=float(np.mean(true_out)) if len(true_out) else math.nan,
        plddt_input=float(np.mean(qa_in_res)) if len(qa_in_res) else math.nan,
        plddt_refined=float(np.mean(qa_res)) if len(qa_res) else math.nan,
        pred_dockq_input=docking_in.pred_dockq, pred_dockq_refined=docking_out.pred_dockq,
        contacts_clashes=interface_physics(example.complex).contacts_clashes,
        qa_pearson=float(stats.pearsonr(qa_res, true_out)[0]) if correlated else None,
        dockq_input=example.dockq, dockq_refined=dockq_refined,
        residue_qa={"pred": qa_res, "true": true_out, "pred_input": qa_in_res, "true_input": true_in},
    )


def ranking_figures(results: Sequence[DecoyResult], score: Callable[[DecoyResult], float | None]) -> dict:
    """How well ``score`` ranks the decoys by their input DockQ, measured exactly as ``egr evaluate`` does
    (:func:`egr.evaluate.qa_tables`): Spearman and ROC AUC for acceptable over all scored decoys, and over
    targets with ≥ 2 decoys the mean ranking loss and the targets whose first-ranked decoy is acceptable."""
    frame = pd.DataFrame({"target": [r.target for r in results], "dockq_decoy": [r.dockq_input for r in results],
                          "score": [np.nan if score(r) is None else score(r) for r in results]})
    _, summary, _ = qa_tables(frame, (Ranker("score", "score", "score"),), top_n=1)
    if summary.empty:
        return {"n": 0, "spearman": None, "auc_acceptable": None, "ranking_loss": None, "top1_acceptable": None,
                "n_ranked_targets": 0}
    row = summary.iloc[0]

    def number(value) -> float | None:
        return float(value) if pd.notna(value) else None

    return {"n": int(row["n_decoys"]), "spearman": number(row["spearman"]),
            "auc_acceptable": number(row["auc_acceptable"]), "ranking_loss": number(row["ranking_loss_mean"]),
            "top1_acceptable": int(row["top1_acceptable"]) if pd.notna(row["top1_acceptable"]) else None,
            "n_ranked_targets": int(row["n_targets"])}


def summarise(results: Sequence[DecoyResult], margin: float, coord_min_dockq: float) -> dict:
    """Aggregate figures of evaluated decoys (means over decoys; QA correlations pooled over residues).

    ``rmsd_refinable`` (the checkpoint criterion) is the mean all-atom RMSD of refined decoys with
    DockQ ≥ ``coord_min_dockq``; ΔDockQ figures are over decoys with a refined DockQ, raw (every decoy
    refined) and gated (the gate with ``margin`` applied).
    """
    refinable = [r for r in results if r.dockq_input >= coord_min_dockq]

    def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
        return float(stats.pearsonr(a, b)[0]) if len(a) > 2 and np.ptp(a) > 0 and np.ptp(b) > 0 else None

    pred = np.concatenate([r.residue_qa["pred"] for r in results]) if results else np.zeros(0)
    true = np.concatenate([r.residue_qa["true"] for r in results]) if results else np.zeros(0)
    pred_in = np.concatenate([r.residue_qa["pred_input"] for r in results]) if results else np.zeros(0)
    true_in = np.concatenate([r.residue_qa["true_input"] for r in results]) if results else np.zeros(0)
    scored = [r for r in results if r.dockq_refined is not None]
    raw = [r.dockq_refined - r.dockq_input for r in scored]
    gated = [r.delta_dockq(margin) for r in scored]
    return {
        "n_decoys": len(results),
        "n_refinable": len(refinable),
        "rmsd_refinable": _finite_mean(r.rmsd_refined for r in refinable),
        "rmsd_refinable_input": _finite_mean(r.rmsd_input for r in refinable),
        "ca_rmsd_refinable": _finite_mean(r.ca_rmsd_refined for r in refinable),
        "ca_rmsd_refinable_input": _finite_mean(r.ca_rmsd_input for r in refinable),
        "delta_lddt": _finite_mean(r.lddt_refined - r.lddt_input for r in results),
        "qa_pearson_residues": pearson(pred, true),
        "qa_input_pearson_residues": pearson(pred_in, true_in),
        "qa_pearson_decoys": pearson(np.array([r.plddt_refined for r in results]),
                                     np.array([r.lddt_refined for r in results])),
        "docking_egr": ranking_figures(results, lambda r: r.pred_dockq_input),
        "docking_contacts_clashes": ranking_figures(results, lambda r: r.contacts_clashes),
        "n_dockq": len(scored),
        "delta_dockq_mean_raw": _finite_mean(raw),
        "delta_dockq_min_raw": min(raw) if raw else None,
        "fi_dockq_raw": float(np.mean(dockq_improved(np.array(raw)))) if raw else None,
        "gate_margin": margin if math.isfinite(margin) else str(margin),
        "gate_kept": int(sum(keeps_refinement(r.predicted_gain, margin) for r in scored)),
        "delta_dockq_mean_gated": _finite_mean(gated),
        "delta_dockq_min_gated": min(gated) if gated else None,
    }


def calibrate_margin(results: Sequence[DecoyResult], max_loss: float = 0.05) -> float:
    """Smallest gate margin ≥ 0 under which the scored decoys have mean ΔDockQ ≥ 0 and none loses > ``max_loss``.

    Candidates are 0 and the decoys' positive predicted DockQ gains (a margin equal to a gain rejects that
    decoy); +inf (always fall back) is the answer when none qualifies. The margin is never negative:
    the gate keeps a refinement only where the QA predicts a gain, never where it predicts a loss.
    """
    scored = [r for r in results if r.dockq_refined is not None]
    for margin in sorted({0.0, *(r.predicted_gain for r in scored if r.predicted_gain > 0)}):
        deltas = np.array([r.delta_dockq(margin) for r in scored])
        if len(deltas) and deltas.mean() >= 0.0 and deltas.min() >= -max_loss:
            return float(margin)
    return math.inf


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size); initialises the process group (NCCL for CUDA, else Gloo) when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _device(requested: str, world: int) -> torch.device:
    if requested == "cuda" and world > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(requested)


def _save_checkpoint(path: Path, model: EGR, optimiser: torch.optim.Optimizer, epoch: int, cfg: TrainConfig,
                     history: list[dict], best: dict | None, sources: dict) -> None:
    payload = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "config": asdict(cfg), "sources": sources,
               "model": model.state_dict(), "optimiser": optimiser.state_dict(),
               "history": json.dumps(history), "best": json.dumps(best)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_initial(model: EGR, weights: Path, device: torch.device) -> None:
    """Load ``weights`` into ``model``; ValueError where their model config differs from the run's."""
    initial, _ = load_model(weights, device)
    changed = sorted(k for k, v in asdict(model.config).items() if getattr(initial.config, k) != v)
    if changed:
        raise ValueError(f"{weights}: model config differs from this run's ("
                         + ", ".join(f"{k} {getattr(initial.config, k)} vs {getattr(model.config, k)}" for k in changed)
                         + ")")
    model.load_state_dict(initial.state_dict())


def _save_best(model: EGR, outdir: Path, cfg: TrainConfig, record: dict, history: list[dict], splits_file: Path) -> None:
    """Write ``best.safetensors`` (+ sidecar); a fine-tuned run names the weights it started from (its epoch 0:
    path and SHA-256)."""
    training = {"config": asdict(cfg), "epoch": record["epoch"], "validation": record["val"], "splits": str(splits_file)}
    if history and history[0]["epoch"] == 0:
        training["init_weights"] = history[0]["init_weights"]
        training["init_sha256"] = history[0]["init_sha256"]
    save_weights(model, outdir / "best.safetensors", trained=True,
                 description=f"EGR trained by egr.train (best validation criterion, epoch {record['epoch']})",
                 extra={"training": training})


def _number(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _epoch_line(record: dict, epochs: int) -> str:
    t, v = record["train"], record["val"]
    return (f"epoch {record['epoch']}/{epochs} {record['seconds']:.0f}s loss {_number(t.get('loss'), '.4f')} (coord {_number(t.get('coord'), '.4f')}, "
            f"qa {_number(t.get('qa'), '.4f')}, qa_input {_number(t.get('qa_input'), '.4f')}) | val RMSD {_number(v['rmsd_refinable'])} "
            f"(input {_number(v['rmsd_refinable_input'])}) ΔLDDT {_number(v['delta_lddt'], '+.4f')} "
            f"QA r {_number(v['qa_pearson_residues'])} ΔDockQ {_number(v['delta_dockq_mean_raw'], '+.4f')} | "
            f"dock {_number(t.get('dock_bce'), '.4f')}/{_number(t.get('dock_rank'), '.4f')} val Spearman "
            f"{_number(v['docking_egr']['spearman'])} AUC {_number(v['docking_egr']['auc_acceptable'])} "
            f"(contacts-clashes {_number(v['docking_contacts_clashes']['spearman'])} / "
            f"{_number(v['docking_contacts_clashes']['auc_acceptable'])})"
            + ("" if "docking_poses" not in v else
               f" | val poses Spearman {_number(v['docking_poses']['egr_spearman'])} (contacts-clashes "
               f"{_number(v['docking_poses']['contacts_clashes_spearman'])})")
            + ("" if "docking_pools" not in v else
               f" | val pools AUC {_number(v['docking_pools'].get('egr_auc_acceptable'))} Spearman "
               f"{_number(v['docking_pools'].get('egr_spearman'))} (LightDock "
               f"{_number(v['docking_pools'].get('lightdock_auc_acceptable'))}, contacts-clashes "
               f"{_number(v['docking_pools'].get('contacts_clashes_auc_acceptable'))})"))


def _criterion(record: dict) -> float:
    """Checkpoint criterion, lower is better: minus the mean of the validation Spearman of predicted vs true
    DockQ over the real validation decoys and, where they were scored, the mean per-base Spearman over the
    sampled validation poses and 2 · AUC − 1 (for acceptable; 0 for random, like a correlation) over the
    validation LightDock pools' members (inf where the first is undefined)."""
    value = record["val"]["docking_egr"]["spearman"]
    if value is None:
        return math.inf
    parts = [float(value)]
    poses = record["val"].get("docking_poses", {}).get("egr_spearman")
    if poses is not None:
        parts.append(float(poses))
    auc = record["val"].get("docking_pools", {}).get("egr_auc_acceptable")
    if auc is not None:
        parts.append(2 * float(auc) - 1)
    return -float(np.mean(parts))


def pool_validation(model: EGR, families: Sequence[DockingFamily], device: torch.device) -> dict:
    """Ranking on the validation LightDock pools, as ``egr evaluate`` measures the product on them: every
    pool member (:meth:`DockedPool.members`) scored by the docking head on its interface crop (no noise);
    ROC AUC for acceptable over all members and the mean per-base Spearman(pred_dockq, DockQ), beside
    LightDock's own score and contacts − 10 × clashes on the same poses."""
    scores: dict[str, list[np.ndarray]] = {"egr": [], "lightdock": [], "contacts_clashes": []}
    truths = []
    for family in families:
        members = family.poses.members()
        structures = [family.member(int(i)) for i in members]
        with torch.no_grad():
            scores["egr"].append(group_dockq(lambda batch: model.docking_logits(**batch),
                                             [docking_input(*m) for m in structures], device).cpu().numpy())
        scores["lightdock"].append(family.poses.score[members])
        scores["contacts_clashes"].append(np.array([interface_physics(c).contacts_clashes for c, _ in structures]))
        truths.append(family.dockq[members])
    if not truths:
        return {"n_bases": 0}
    truth = pd.Series(np.concatenate(truths))
    out: dict = {"n_bases": len(truths), "n_poses": len(truth)}
    for name, values in scores.items():
        per_base = [stats.spearmanr(v, t).statistic for v, t in zip(values, truths) if np.ptp(t) > 0 and np.ptp(v) > 0]
        out[f"{name}_auc_acceptable"] = _finite_mean([roc_auc(pd.Series(np.concatenate(values)),
                                                              truth >= ACCEPTABLE_DOCKQ)])
        out[f"{name}_spearman"] = _finite_mean(per_base)
    return out


def _finite_mean(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values (None and NaN left out); None when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def pose_validation(model: EGR, families: Sequence[DockingFamily], per_base: int, device: torch.device) -> dict:
    """Within-target ranking on sampled validation poses: per base, ``per_base`` poses drawn over its DockQ
    strata with a fixed generator (the same poses every epoch), scored by the docking head on their
    interface crops as in training (no noise); the mean over bases of Spearman(pred_dockq, DockQ), beside
    the contacts − 10 × clashes reference on the same poses."""
    egr, reference = [], []
    for family in families:
        chosen = family.draw(per_base, torch.Generator().manual_seed(0))
        with torch.no_grad():
            pred = group_dockq(lambda batch: model.docking_logits(**batch),
                               [docking_input(*family.member(i)) for i in chosen], device).cpu().numpy()
        truth = family.dockq[chosen]
        physics = family.poses.contacts[chosen] - CLASH_WEIGHT * family.poses.clashes[chosen]
        if np.ptp(truth) > 0:
            egr.append(stats.spearmanr(pred, truth).statistic)
            reference.append(stats.spearmanr(physics, truth).statistic)

    return {"n_bases": len(egr), "poses_per_base": per_base, "egr_spearman": _finite_mean(egr),
            "contacts_clashes_spearman": _finite_mean(reference)}


def _validate(model: EGR, data: DataSelection, cfg: TrainConfig, device: torch.device,
              val_families: Sequence[DockingFamily] = (), val_pools: Sequence[DockingFamily] = ()) -> dict:
    model.eval()
    results = [evaluate_example(model, load_example(data.cache, row), device, score_dockq=i < cfg.val_dockq_decoys)
               for i, row in enumerate(data.val)]
    summary = summarise(results, margin=0.0, coord_min_dockq=cfg.coord_min_dockq)
    if val_families and cfg.val_poses_per_base > 0:
        summary["docking_poses"] = pose_validation(model, val_families, cfg.val_poses_per_base, device)
    if val_pools:
        summary["docking_pools"] = pool_validation(model, val_pools, device)
    model.train()
    return summary


@contextmanager
def _deterministic_algorithms() -> Iterator[None]:
    """PyTorch's deterministic kernels for the duration of the block, then the caller's setting again.

    On CPU this is what makes runs bit-identical: with several threads, the backward of index gathers
    accumulates in a thread-dependent order otherwise. warn_only: a GPU op without a deterministic
    kernel warns instead of failing.
    """
    enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def train(cache: Path, splits_file: Path, outdir: Path, cfg: TrainConfig, resume: bool = False,
          device: str = "cpu", log: Callable[[str], None] = print, poses: Path | None = None,
          init_weights: Path | None = None, pools: Sequence[Path] = ()) -> dict:
    """Train EGR (module doc). Writes ``outdir/{last.pt, best.safetensors, best.json, history.json}``.
    ``poses``: an ``egr sample-poses`` folder whose training-split bases feed the docking steps.
    ``pools``: ``egr dock-pools`` folders; their training-split bases feed the docking steps (every LightDock
    pose, or the pool's members: ``cfg.pool_poses``), their validation-split pools enter the checkpoint
    criterion (:func:`_criterion`).
    ``init_weights``: start from these weights (same model config) instead of a seeded initialisation; they are
    validated first as epoch 0, so a fine-tuned epoch replaces them as ``best`` only where it validates better.

    Returns the best epoch's record (epoch, training loss parts, validation summary). Runs on CPU are
    bit-for-bit reproducible for a given seed and thread count.
    """
    with _deterministic_algorithms():
        return _train(cache, splits_file, outdir, cfg, resume, device, log, poses, init_weights, pools)


def _train(cache: Path, splits_file: Path, outdir: Path, cfg: TrainConfig, resume: bool, device: str,
           log: Callable[[str], None], poses: Path | None, init_weights: Path | None,
           pools: Sequence[Path]) -> dict:
    rank, world = _distributed(device)
    dev = _device(device, world)
    data = select_data(cache, splits_file, cfg.max_atoms)
    if not data.train or not data.val:
        raise ValueError(f"need training and validation decoys; got {len(data.train)} and {len(data.val)}")
    outdir = Path(outdir)
    families: list[DockingFamily] = []
    if cfg.docking_weight > 0:
        families = real_families(cache, data.train)
        if poses is not None:
            families += pose_families(poses, splits_file, "train")
        for folder in pools:
            families += pool_families(folder, splits_file, "train", members_only=cfg.pool_poses == "members")
        log(f"docking families: {len(families)} ({sum(f.base is not None and not f.docked for f in families)} of "
            f"sampled poses, {sum(f.docked for f in families)} LightDock pools)")
    val_families = (pose_families(poses, splits_file, "val") if poses is not None and cfg.val_poses_per_base > 0
                    else [])
    val_pools = [family for folder in pools for family in pool_families(folder, splits_file, "val")]
    # the data folders are part of a run's identity: resuming with others would mix two runs
    sources = {"poses": str(Path(poses).resolve()) if poses else "", "pools": [str(Path(f).resolve()) for f in pools]}
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        model = EGR(cfg.model_config()).to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history, best = 0, [], None
    checkpoint = outdir / "last.pt"
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=dev, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{checkpoint}: not an egr training checkpoint")
        # only the number of epochs may change on resume (to train further); anything else would
        # silently mix two runs (a setting a checkpoint predates had its default value then)
        saved = {**asdict(TrainConfig()), **state["config"], **state.get("sources", sources)}
        changed = sorted(k for k, v in {**asdict(cfg), **sources}.items() if k != "epochs" and saved.get(k) != v)
        if changed:
            raise ValueError(f"{checkpoint}: saved with different settings ({', '.join(changed)}); resume needs the same")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start, history, best = int(state["epoch"]), json.loads(state["history"]), json.loads(state["best"])
        log(f"resumed from {checkpoint} after epoch {start}")
    elif cfg.head_only and init_weights is None:
        raise ValueError("head_only fine-tunes the docking head of given weights: pass init_weights")
    elif init_weights is not None:
        _load_initial(model, init_weights, dev)
        if rank == 0:
            began = time.perf_counter()
            best = {"epoch": 0, "train": {}, "val": _validate(model, data, cfg, dev, val_families, val_pools),
                    "init_weights": str(init_weights), "init_sha256": file_sha256(init_weights)}
            best["seconds"] = round(time.perf_counter() - began, 1)
            history.append(best)
            _save_best(model, outdir, cfg, best, history, splits_file)
            log(f"initial weights {init_weights}: " + _epoch_line(best, cfg.epochs))
    if cfg.head_only:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(HEAD_PARAMETERS))
    net: nn.Module = _TwoPass(model, input_pass=cfg.input_qa_weight > 0)
    if world > 1:
        # a docking step leaves the coordinate and pLDDT heads unused, a refinement step the docking head
        net = nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None,
                                                  find_unused_parameters=True)
    steps = epoch_steps(len(data.train), families, cfg)

    for epoch in range(start, cfg.epochs):
        began = time.perf_counter()
        generator = _epoch_generator(cfg.seed, epoch)
        order = torch.randperm(len(steps), generator=generator).tolist()
        # every rank takes the same number of steps (DDP all-reduces once per step)
        mine = order[: len(order) - len(order) % world][rank::world]
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for index in mine:
            kind, item = steps[index]
            if kind == "decoy":
                loss, parts = training_loss(net, load_example(data.cache, data.train[item]), cfg, generator, dev)
            else:
                loss, parts = docking_loss(net, families[item], cfg, generator, dev)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimiser.step()
            for key, value in {"loss": float(loss.detach()), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
        record = {"epoch": epoch + 1, "train": {k: v / counts[k] for k, v in sums.items()},
                  "train_seconds": round(time.perf_counter() - began, 1)}
        if rank == 0:
            record["val"] = _validate(model, data, cfg, dev, val_families, val_pools)
            record["seconds"] = round(time.perf_counter() - began, 1)
            history.append(record)
            if best is None or _criterion(record) < _criterion(best):
                best = record
                _save_best(model, outdir, cfg, best, history, splits_file)
            _save_checkpoint(checkpoint, model, optimiser, epoch + 1, cfg, history, best, sources)
            atomic_write_json(outdir / "history.json", history)
            log(_epoch_line(record, cfg.epochs))
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()
    return best or {}


def evaluate_weights(weights: Path, cache: Path, splits_file: Path, split: str, outdir: Path,
                     margin: float | None = None, calibrate: bool = False, device: str = "cpu",
                     coord_min_dockq: float = ACCEPTABLE_DOCKQ, log: Callable[[str], None] = print) -> dict:
    """Evaluate ``weights`` on every decoy of ``split`` (DockQ of every refined decoy; ``egr evaluate-model``).

    With ``calibrate``, the gate margin is fitted on these decoys (:func:`calibrate_margin`) and stored
    in the weights' sidecar; otherwise ``margin`` (or the sidecar's, or 0) is applied. Writes
    ``outdir/eval_<split>.tsv`` (one row per decoy) and ``outdir/eval_<split>.json`` (summary).
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, not {split!r}")
    model, _ = load_model(weights, device)
    rows = getattr(select_data(cache, splits_file), split)
    results = []
    for row in rows:
        results.append(evaluate_example(model, load_example(cache, row), torch.device(device), score_dockq=True))
        log(f"{row['set']}/{row['decoy_id']}: DockQ {results[-1].dockq_input:.3f} -> {results[-1].dockq_refined}")
    sidecar_path = Path(weights).with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    if calibrate:
        margin = calibrate_margin(results)
        sidecar[GATE_KEY] = gate_record(margin, f"{splits_file}:{split}", len(results))
        atomic_write_json(sidecar_path, sidecar)
    elif margin is None:
        margin = stored_margin(sidecar)
        margin = 0.0 if margin is None else margin
    summary = {"weights": str(weights), "split": split, **summarise(results, margin, coord_min_dockq)}
    columns = [k for k in DecoyResult.__dataclass_fields__ if k != "residue_qa"]
    lines = ["\t".join([*columns, "predicted_gain", "delta_dockq_gated"])]
    for r in results:
        values = [getattr(r, k) for k in columns] + [r.predicted_gain, r.delta_dockq(margin)]
        lines.append("\t".join("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in values))
    atomic_write_text(Path(outdir) / f"eval_{split}.tsv", "\n".join(lines) + "\n")
    atomic_write_json(outdir / f"eval_{split}.json", summary)
    return summary
