"""Training data and training loop on real decoy/native pairs (tests/data/pairs): atom pairing by chain
mapping + sequence alignment, superposition, LDDT labels, loss, determinism, resume, DDP and the gate."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy import stats

from egr.dataset import (build_targets, find_pairs, kabsch, lddt_ca_torch, load_example, pair_atoms,
                         prepare_pair, read_index, write_index)
from egr.gate import GATE_KEY, decide, gate_record, keeps_refinement, stored_margin
from egr.io import file_sha256
from egr.metrics import dockq_scores, residue_correspondence
from egr.model import EGR, EGRConfig
from egr.poses import sample_poses
from egr.split import TargetSplit, write_splits
from egr.structure import Complex, read_decoy, write_pdb
from egr.surface import compute_surface
from egr.train import (HEAD_PARAMETERS, DecoyResult, DockingFamily, TrainConfig, _criterion, _TwoPass, calibrate_margin, epoch_steps,
                       pose_validation, rigid_perturbation, train, training_loss)
from egr.weights import save_weights

PAIRS = Path(__file__).parent / "data" / "pairs"
BM5_DECOY, BM5_NATIVE = PAIRS / "bm5/2X9A/decoys/2X9A_unbound.pdb.gz", PAIRS / "bm5/2X9A/native/2X9A.pdb.gz"
ATTRACT = PAIRS / "dips/kq_1kq1_pdb1_1/decoys/kq_1kq1_pdb1_1_ATTRACT.pdb.gz"
KQ_NATIVE = PAIRS / "dips/kq_1kq1_pdb1_1/native/kq_1kq1_pdb1_1.pdb.gz"
TINY = TrainConfig(hidden=8, num_layers=2, heads=2, epochs=2, lr=1e-3, val_dockq_decoys=1, seed=7,
                   rigid_rotation_deg=5.0, rigid_translation=0.5)


def _targets(decoy: Complex, native_file: Path, tmp_path: Path, chain_map: dict[str, str] | None = None) -> dict:
    """build_targets on a decoy Complex (written to a file, as prepare_pair does)."""
    path = tmp_path / "decoy.pdb"
    write_pdb(decoy, path)
    chain_map = chain_map or dockq_scores(path, native_file)["chain_map"]
    native, _ = read_decoy(native_file)
    return build_targets(decoy, native, path, native_file, chain_map)


def _renumbered(c: Complex, chain: str, numbers: np.ndarray) -> Complex:
    res_seq = c.res_seq.copy()
    res_seq[c.chain_ids == chain] = numbers
    return Complex(**{**c.__dict__, "res_seq": res_seq})


def _subset(c: Complex, keep: np.ndarray) -> Complex:
    fields = {k: v[keep] for k, v in c.__dict__.items()}
    _, fields["residue_index"] = np.unique(fields["residue_index"], return_inverse=True)
    return Complex(**fields)


# ------------------------------------------------------------------------------------------------
# Pairing decoy atoms with native atoms
# ------------------------------------------------------------------------------------------------


def test_bm5_unbound_atoms_pair_closely_after_superposition(tmp_path: Path) -> None:
    decoy, _ = read_decoy(BM5_DECOY)
    t = _targets(decoy, BM5_NATIVE, tmp_path)
    mask = t["target_mask"]
    assert mask.mean() > 0.9
    distance = np.linalg.norm(decoy.coords[mask] - t["target_pos"][mask], axis=1)
    # unbound vs bound: side chains move, but the paired atoms are the same atoms
    assert np.median(distance) < 1.5 and t["ca_rmsd"] < 2.0
    ca = mask & (decoy.atom_names == "CA")
    assert np.percentile(np.linalg.norm(decoy.coords[ca] - t["target_pos"][ca], axis=1), 95) < 4.0


def test_pairing_ignores_numbering_and_coverage(tmp_path: Path) -> None:
    """The real 2X9A decoy renumbered HADDOCK-style (9001+) and ATTRACT-style (1..N), with its first three
    residues removed, pairs every remaining atom with the same native atom as the original."""
    decoy, _ = read_decoy(BM5_DECOY)
    original = _targets(decoy, BM5_NATIVE, tmp_path, {"A": "A", "B": "B"})
    keep = decoy.residue_index >= 3
    edited = _subset(decoy, keep)
    a = edited.chain_ids == "A"
    edited = _renumbered(edited, "A", edited.res_seq[a] + 9000)
    b_residue = edited.residue_index[edited.chain_ids == "B"]
    edited = _renumbered(edited, "B", b_residue - b_residue.min() + 1)
    assert not np.array_equal(edited.res_seq, decoy.res_seq[keep])
    moved = _targets(edited, BM5_NATIVE, tmp_path, {"A": "A", "B": "B"})
    assert np.array_equal(moved["target_mask"], original["target_mask"][keep])
    # targets are the same native atoms; the superposition differs only by the three dropped Cα
    same = moved["target_mask"]
    shift = np.linalg.norm(moved["target_pos"][same] - original["target_pos"][keep][same], axis=1)
    assert shift.max() < 0.2


def test_homodimer_docked_by_attract_pairs_swapped_chains(tmp_path: Path) -> None:
    """ATTRACT docked the homodimer copy into the other site: DockQ's mapping swaps the chains, and the
    swapped pairs are the two crystal copies of one protein (backbone within 1 Å). Paired by the file's own
    chain IDs instead, each bound rigid body matches its native chain atom for atom."""
    decoy, _ = read_decoy(ATTRACT)
    native, _ = read_decoy(KQ_NATIVE)
    path = tmp_path / "decoy.pdb"
    write_pdb(decoy, path)

    def pairing(chain_map: dict[str, str]) -> np.ndarray:
        return pair_atoms(decoy, native, residue_correspondence(path, KQ_NATIVE, chain_map), chain_map).native_atom

    def chain_rmsd(native_atom: np.ndarray, chain: str, atoms: tuple[str, ...] | None = None) -> float:
        rows = np.flatnonzero((native_atom >= 0) & (decoy.chain_ids == chain)
                              & (np.isin(decoy.atom_names, atoms) if atoms else True))
        rotation, shift = kabsch(native.coords[native_atom[rows]], decoy.coords[rows])
        fitted = native.coords[native_atom[rows]] @ rotation.T + shift
        return float(np.sqrt(np.mean(np.sum((fitted - decoy.coords[rows]) ** 2, axis=1))))

    chain_map = dockq_scores(path, KQ_NATIVE)["chain_map"]
    assert chain_map == {"H": "A", "A": "H"}
    swapped = pairing(chain_map)
    paired = swapped >= 0
    assert paired.mean() > 0.9
    assert np.array_equal(native.chain_ids[swapped[paired]], np.where(decoy.chain_ids[paired] == "A", "H", "A"))
    assert np.array_equal(native.atom_names[swapped[paired]], decoy.atom_names[paired])
    assert max(chain_rmsd(swapped, c, ("N", "CA", "C", "O")) for c in ("A", "H")) < 1.0

    direct = pairing({"A": "A", "H": "H"})
    assert (direct >= 0).all()
    assert max(chain_rmsd(direct, c) for c in ("A", "H")) < 0.01


def test_symmetric_side_chain_names_follow_the_decoy(tmp_path: Path) -> None:
    decoy, _ = read_decoy(BM5_DECOY)
    original = _targets(decoy, BM5_NATIVE, tmp_path, {"A": "A", "B": "B"})
    names = decoy.atom_names.copy()
    asp = (decoy.res_names == "ASP") & np.isin(names, ["OD1", "OD2"])
    names[asp] = np.where(names[asp] == "OD1", "OD2", "OD1")  # the same atoms, the other naming
    flipped = _targets(Complex(**{**decoy.__dict__, "atom_names": names}), BM5_NATIVE, tmp_path, {"A": "A", "B": "B"})
    assert asp.sum() >= 4
    assert np.allclose(flipped["target_pos"][asp], original["target_pos"][asp])


def test_lddt_in_the_training_loop_equals_the_scoring_module(tmp_path: Path) -> None:
    decoy, _ = read_decoy(BM5_DECOY)
    t = _targets(decoy, BM5_NATIVE, tmp_path, {"A": "A", "B": "B"})
    ca = torch.from_numpy(decoy.coords[np.clip(t["ca_node"], 0, None)])
    ours = lddt_ca_torch(ca, torch.from_numpy(t["lddt_pairs"]), torch.from_numpy(t["lddt_native_dist"]).double(),
                         torch.from_numpy(t["lddt_total"]).double()).numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(t["lddt_decoy"]))
    assert np.nanmax(np.abs(ours - t["lddt_decoy"])) < 1e-6
    assert 0.5 < np.nanmean(ours) < 1.0


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three real pairs prepared into a cache, and a splits file: 2 training decoys, 1 validation decoy."""
    root = tmp_path_factory.mktemp("prepared")
    wanted = {"2X9A_unbound", "kq_1kq1_pdb1_1_HDOCK", "1AK4_ti5-itw_212w"}
    pairs = [p for p in find_pairs(PAIRS, ["bm5", "dips", "haddock"]) if p.decoy_id in wanted]
    write_index([prepare_pair(p, root / "cache") for p in pairs], root / "cache")
    write_splits([TargetSplit("2X9A", "bm5", "train", 0, ("x",)),
                  TargetSplit("kq_1kq1_pdb1_1", "dips", "train", 1, ("y",)),
                  TargetSplit("1AK4", "haddock", "val", 2, ("z",)),
                  TargetSplit("1EFN", "haddock", "test", 3, ("w",))], root / "splits.tsv")
    return root / "cache", root / "splits.tsv"


def _example(cache: Path, decoy_id: str):
    return load_example(cache, next(r for r in read_index(cache) if r["decoy_id"] == decoy_id))


def test_prepared_files_load_safely_and_hold_consistent_targets(cache: tuple[Path, Path]) -> None:
    ex = _example(cache[0], "kq_1kq1_pdb1_1_HDOCK")
    n = ex.graph.num_nodes
    assert ex.target_pos.shape == (n, 3) and ex.target_mask.shape == (n,) and ex.target_mask.float().mean() > 0.9
    assert ex.meta["chain_map"] == {"H": "A", "A": "H"} and 0.8 < ex.dockq < 0.9
    assert int(ex.lddt_pairs.max()) < len(ex.lddt_total)


def test_loss_decreases_on_one_real_graph(cache: tuple[Path, Path]) -> None:
    ex = _example(cache[0], "2X9A_unbound")
    cfg = replace(TINY, hidden=16, lr=1e-2, noise_sigma=0.0, rigid_rotation_deg=0.0, rigid_translation=0.0)
    torch.manual_seed(0)
    net = _TwoPass(EGR(cfg.model_config()), input_pass=True)
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    losses = []
    for _ in range(20):
        loss, parts = training_loss(net, ex, cfg, torch.Generator().manual_seed(0), torch.device("cpu"))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert set(parts) == {"coord", "qa", "qa_input"}
    # the unbound → bound gap of 2X9A is ~1 Å per atom; a steady fall is what a few steps can show
    assert losses[-1] < 0.96 * losses[0], losses
    assert np.mean(np.diff(losses) < 0) > 0.8, losses


def test_rigid_perturbation_moves_one_chain_rigidly_and_rebuilds_the_graph(cache: tuple[Path, Path]) -> None:
    ex = _example(cache[0], "2X9A_unbound")
    moved = rigid_perturbation(ex, replace(TINY, rigid_rotation_deg=10.0, rigid_translation=2.0),
                               torch.Generator().manual_seed(1))
    before, after = ex.complex.coords, moved.complex.coords
    changed = np.linalg.norm(after - before, axis=1) > 1e-6
    chains = np.unique(ex.complex.chain_index[changed])
    assert len(chains) == 1 and changed.sum() == (ex.complex.chain_index == chains[0]).sum()
    rows = np.flatnonzero(changed)[:50]
    assert np.allclose(np.linalg.norm(before[rows, None] - before[None, rows], axis=-1),
                       np.linalg.norm(after[rows, None] - after[None, rows], axis=-1), atol=1e-6)
    assert torch.allclose(moved.graph.pos.double(), torch.from_numpy(after), atol=1e-4)
    assert torch.equal(moved.target_pos, ex.target_pos)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_training_is_deterministic_and_resume_reproduces(cache: tuple[Path, Path], tmp_path: Path) -> None:
    cache_dir, splits = cache
    log: list[str] = []
    best = train(cache_dir, splits, tmp_path / "a", TINY, log=log.append)
    train(cache_dir, splits, tmp_path / "b", TINY, log=log.append)
    first, second = _weights(tmp_path / "a/last.pt"), _weights(tmp_path / "b/last.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert best["epoch"] in (1, 2) and best["val"]["n_dockq"] == 1
    assert (tmp_path / "a/best.safetensors").is_file() and load_file(tmp_path / "a/best.safetensors")

    train(cache_dir, splits, tmp_path / "c", replace(TINY, epochs=1), log=log.append)
    train(cache_dir, splits, tmp_path / "c", TINY, resume=True, log=log.append)
    resumed = _weights(tmp_path / "c/last.pt")
    assert all(torch.equal(first[k], resumed[k]) for k in first)
    assert any("resumed" in line for line in log)
    with pytest.raises(ValueError, match="lr"):
        train(cache_dir, splits, tmp_path / "c", replace(TINY, lr=0.5), resume=True, log=log.append)
    pools = tmp_path / "pools"  # a dock-pools folder without bases: the run's data sources alone differ
    pools.mkdir()
    (pools / "pool.tsv").write_text("id\tset\ttarget\tbase_id\tsplit\n")
    with pytest.raises(ValueError, match="pools"):
        train(cache_dir, splits, tmp_path / "c", TINY, resume=True, log=log.append, pools=[pools])
    with pytest.raises(ValueError, match="pool_poses"):
        replace(TINY, pool_poses="member")


def test_fine_tuning_starts_from_the_given_weights_and_keeps_them_unless_an_epoch_validates_better(
        cache: tuple[Path, Path], tmp_path: Path) -> None:
    cache_dir, splits = cache
    torch.manual_seed(3)
    initial = EGR(TINY.model_config())
    save_weights(initial, tmp_path / "init.safetensors", trained=False, description="seeded elsewhere")
    log: list[str] = []
    # lr 0: the epoch leaves the weights as loaded, so it validates exactly as epoch 0 and does not replace it
    best = train(cache_dir, splits, tmp_path / "ft", replace(TINY, epochs=1, lr=0.0), log=log.append,
                 init_weights=tmp_path / "init.safetensors")
    history = json.loads((tmp_path / "ft/history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1] and best["epoch"] == 0
    assert history[0]["val"] == history[1]["val"]
    saved = load_file(tmp_path / "ft/best.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in initial.state_dict().items())
    sidecar = json.loads((tmp_path / "ft/best.json").read_text())
    assert sidecar["training"]["init_weights"] == str(tmp_path / "init.safetensors")
    assert sidecar["training"]["init_sha256"] == file_sha256(tmp_path / "init.safetensors")
    assert any(line.startswith("initial weights") for line in log)
    with pytest.raises(ValueError, match="hidden 8 vs 16"):
        train(cache_dir, splits, tmp_path / "other", replace(TINY, hidden=16, epochs=1), log=log.append,
              init_weights=tmp_path / "init.safetensors")


def test_head_only_fine_tune_changes_the_docking_head_alone(cache: tuple[Path, Path], tmp_path: Path) -> None:
    cache_dir, splits = cache
    # the two training decoys listed as one target's: a family of real decoys for the docking steps
    one_target = tmp_path / "cache"
    shutil.copytree(cache_dir, one_target)
    rows = read_index(one_target)
    write_index([{**r, "set": "bm5", "target": "2X9A"} if r["target"] == "kq_1kq1_pdb1_1" else r for r in rows],
                one_target)
    torch.manual_seed(5)
    initial = EGR(TINY.model_config())
    save_weights(initial, tmp_path / "init.safetensors", trained=False, description="seeded elsewhere")
    cfg = replace(TINY, epochs=1, lr=1e-2, head_only=True)
    log: list[str] = []
    train(one_target, splits, tmp_path / "head", cfg, log=log.append, init_weights=tmp_path / "init.safetensors")
    before, after = initial.state_dict(), _weights(tmp_path / "head/last.pt")
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(HEAD_PARAMETERS) for k in moved), moved
    assert "dock_head.lin1.weight" in moved
    assert json.loads((tmp_path / "head/history.json").read_text())[1]["train"].keys() == {"loss", "dock_bce", "dock_rank"}
    with pytest.raises(ValueError, match="init_weights"):
        train(one_target, splits, tmp_path / "none", cfg, log=log.append)


def test_ddp_with_two_cpu_processes(cache: tuple[Path, Path], tmp_path: Path) -> None:
    """The multi-GPU path (torchrun + DistributedDataParallel), here with the Gloo backend on CPU."""
    cache_dir, splits = cache
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nfrom dataclasses import replace\nfrom pathlib import Path\n"
        "from egr.train import TrainConfig, train\n"
        f"train(Path({str(cache_dir)!r}), Path({str(splits)!r}), Path(sys.argv[1]), "
        "TrainConfig(hidden=8, num_layers=2, heads=2, epochs=1, val_dockq_decoys=0))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out/best.safetensors").is_file() and (tmp_path / "out/last.pt").is_file()


# ------------------------------------------------------------------------------------------------
# The never-worse gate
# ------------------------------------------------------------------------------------------------


def test_input_pass_keeps_the_input_coordinates(cache: tuple[Path, Path]) -> None:
    g = _example(cache[0], "2X9A_unbound").graph
    torch.manual_seed(0)
    model = EGR(EGRConfig(hidden=8, num_layers=3, heads=2, coord_init_gain=1.0)).eval()
    zeros = {n: torch.zeros_like(p) for n, p in model.named_parameters() if ".phi_x.lin2." in n}
    with torch.no_grad():
        still, qa_still = torch.func.functional_call(model, zeros, (g.x, g.pos, g.edge_index, g.edge_attr))
        moved, qa = model(g.x, g.pos, g.edge_index, g.edge_attr)
        moved_too, qa_too, qa_input = model.forward_with_input_pass(g.x, g.pos, g.edge_index, g.edge_attr)
    assert torch.equal(moved, moved_too) and torch.equal(qa, qa_too)
    assert torch.allclose(still, g.pos, atol=1e-4)
    assert (moved - g.pos).abs().max() > 1e-3  # the normal pass does move atoms
    assert torch.allclose(qa_input, qa_still, atol=1e-6)
    assert all(p.abs().sum() > 0 for n, p in model.named_parameters() if ".phi_x.lin2.weight" in n)


def test_epoch_steps_count_docking_groups_per_kind_of_family() -> None:
    real = DockingFamily(key="dips/t", dockq=np.array([0.1, 0.9]), proximity=[])
    sampled = DockingFamily(key="bm5/b", dockq=np.array([0.1, 0.9]), proximity=[], base=object())
    cfg = TrainConfig(groups_per_base=2, groups_per_real_target=3)
    assert epoch_steps(2, [real, sampled], cfg) == [("decoy", 0), ("decoy", 1)] + [("family", 0)] * 3 + [("family", 1)] * 2


def test_pose_validation_ranks_fixed_sampled_poses_beside_contacts_clashes() -> None:
    """The sampled-pose half of the checkpoint criterion: the same poses every call, the reference computed
    on exactly those, and the criterion the mean of the real-decoy and the pose Spearman."""
    base, _ = read_decoy(KQ_NATIVE)
    poses = sample_poses(base, KQ_NATIVE, n=12, seed=1)
    proximity = compute_surface(base.coords, base.elements, base.chain_ids).proximity
    family = DockingFamily(key="dips/kq", dockq=poses.dockq, proximity=[proximity], base=base, poses=poses)
    torch.manual_seed(0)
    model = EGR(TINY.model_config()).eval()
    first = pose_validation(model, [family], 8, torch.device("cpu"))
    assert first == pose_validation(model, [family], 8, torch.device("cpu"))
    chosen = family.draw(8, torch.Generator().manual_seed(0))
    reference = stats.spearmanr(poses.contacts[chosen] - 10 * poses.clashes[chosen], poses.dockq[chosen]).statistic
    assert first["n_bases"] == 1 and first["contacts_clashes_spearman"] == pytest.approx(reference)
    assert -1.0 <= first["egr_spearman"] <= 1.0
    assert _criterion({"val": {"docking_egr": {"spearman": 0.2}, "docking_poses": {"egr_spearman": 0.6}}}) == \
        pytest.approx(-0.4)
    assert _criterion({"val": {"docking_egr": {"spearman": 0.2}}}) == pytest.approx(-0.2)


def test_gate_decision_and_margin_calibration() -> None:
    assert decide(0.75, 0.70, 0.01).keep_refined
    assert not decide(0.75, 0.70, 0.1).keep_refined
    assert not decide(None, 0.7, -math.inf).keep_refined  # no estimate: the input stays
    assert decide(0.75, 0.70, 0.0).predicted_gain == pytest.approx(0.05)
    assert keeps_refinement(0.05, 0.01) and not keeps_refinement(0.01, 0.01)
    assert not keeps_refinement(math.nan, -math.inf)  # no estimate: the input stays
    assert stored_margin({GATE_KEY: gate_record(math.inf, "splits.tsv:val", 3)}) == math.inf
    assert stored_margin({}) is None

    def result(gain: float, dockq_in: float, dockq_out: float) -> DecoyResult:
        return DecoyResult("s", "t", "d", 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5 + gain, 0.0, None,
                           dockq_in, dockq_out)

    results = [result(0.05, 0.5, 0.55), result(0.02, 0.5, 0.40), result(0.01, 0.5, 0.51)]
    margin = calibrate_margin(results)
    assert margin == pytest.approx(0.02)  # keeps the first decoy only; a lower margin would let the second lose 0.10
    assert [r.delta_dockq(margin) for r in results] == [pytest.approx(0.05), 0.0, 0.0]
    assert calibrate_margin([result(0.05, 0.5, 0.3)]) == pytest.approx(0.05)  # falls back on the only decoy
    # a predicted loss is never accepted, even where refinement happened to help
    assert calibrate_margin([result(-0.01, 0.5, 0.6)]) == 0.0
    assert calibrate_margin([]) == math.inf  # no evidence: always fall back
