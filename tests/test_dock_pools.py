"""Single-program pools (egr.dock_pools): LightDock run for real on a bundled BM5 target, its poses
converted to rigid moves that reproduce LightDock's own structures, labels equal to DockQ's."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from egr.dock_pools import (PoolConfig, build_pool, distinct_by_score, dock, lightdock_available, load_pool,
                            read_glowworms, save_pool, select_pool, true_interface_restraints)
from egr.metrics import dockq_scores
from egr.poses import apply_pose, default_ligand_chain, ligand_mask
from egr.structure import read_decoy, write_pdb

DATA = Path(__file__).parent / "data" / "pairs" / "bm5" / "2X9A"
UNBOUND = DATA / "decoys" / "2X9A_unbound.pdb.gz"
NATIVE = DATA / "native" / "2X9A.pdb.gz"
TINY = PoolConfig(swarms=2, glowworms=4, steps=2, n_top=3, n_near=2)

available, why = lightdock_available()
needs_lightdock = pytest.mark.skipif(not available, reason=why)


def _atoms(path: Path) -> np.ndarray:
    return np.array([[float(line[30:38]), float(line[38:46]), float(line[46:54])]
                     for line in path.read_text().splitlines() if line.startswith("ATOM")])


@needs_lightdock
def test_moves_reproduce_lightdocks_own_structures(tmp_path: Path) -> None:
    base, _ = read_decoy(UNBOUND)
    ligand = default_ligand_chain(base)
    rotations, translations, scores, swarms = dock(base, ligand, TINY, seed=7, workdir=tmp_path)
    assert rotations.shape == (8, 3, 3) and translations.shape == (8, 3) and scores.shape == (8,)
    assert np.allclose(np.einsum("nij,nkj->nik", rotations, rotations), np.eye(3), atol=1e-6)
    # LightDock writes pose 0 of swarm 1 itself: receptor centred, ligand moved (3-decimal PDB columns)
    subprocess.run(["lgd_generate_conformations.py", "receptor.pdb", "ligand.pdb", "swarm_1/gso_2.out", "1"],
                   cwd=tmp_path, check=True, capture_output=True)
    theirs = _atoms(tmp_path / "swarm_1" / "lightdock_0.pdb")
    mask = ligand_mask(base, ligand)
    ours = apply_pose(base.coords, mask, rotations[4], translations[4])
    receptor_shift = _atoms(tmp_path / "receptor.pdb")[0] - _atoms(tmp_path / "lightdock_receptor.pdb")[0]
    n_receptor = int((~mask).sum())
    oxt = base.atom_names == "OXT"  # LightDock drops OXT (--noxt)
    assert np.abs(theirs[:n_receptor - int(oxt[~mask].sum())] + receptor_shift - ours[~mask & ~oxt]).max() < 2e-3
    assert np.abs(theirs[-int((mask & ~oxt).sum()):] + receptor_shift - ours[mask & ~oxt]).max() < 2e-3
    assert swarms.tolist() == [0] * 4 + [1] * 4


@needs_lightdock
def test_pool_labels_equal_dockq_and_round_trip(tmp_path: Path) -> None:
    base, _ = read_decoy(UNBOUND)
    base_file = tmp_path / "base.pdb"
    write_pdb(base, base_file)
    base, _ = read_decoy(base_file)
    workdir = tmp_path / "lightdock"
    workdir.mkdir()
    pool = build_pool(base, base_file, NATIVE, TINY, seed=3, workdir=workdir, source_file=UNBOUND)
    members = pool.members()
    assert 1 <= len(members) <= TINY.n_top + TINY.n_near
    assert np.all(np.diff(pool.score[members[pool.source[members] == 0]]) <= 0)  # best LightDock scores first
    first = members[0]
    decoy = tmp_path / "pose.pdb"
    mask = ligand_mask(base, pool.ligand_chain)
    write_pdb(base.with_coords(apply_pose(base.coords, mask, pool.rotations[first], pool.translations[first],
                                          pool.centre)), decoy)
    truth = dockq_scores(decoy, NATIVE)
    assert pool.dockq[first] == pytest.approx(truth["global_dockq"], abs=1e-6)
    save_pool(tmp_path / "pool.npz", pool)
    again = load_pool(tmp_path / "pool.npz")
    assert np.array_equal(again.rotations, pool.rotations) and again.params == pool.params
    assert again.members().tolist() == members.tolist()


def test_true_interface_restraints_name_every_residue_within_5_angstrom_of_the_partner() -> None:
    base, _ = read_decoy(UNBOUND)
    ligand = default_ligand_chain(base)
    lines = true_interface_restraints(base, ligand).splitlines()
    mask = ligand_mask(base, ligand)
    heavy = base.elements != "H"
    expected = set()
    for side, own, other in (("R", ~mask & heavy, mask & heavy), ("L", mask & heavy, ~mask & heavy)):
        distance = np.linalg.norm(base.coords[own][:, None] - base.coords[other][None], axis=-1).min(axis=1)
        for row in np.flatnonzero(own)[distance < 5.0]:
            expected.add(f"{side} {base.chain_ids[row]}.{base.res_names[row]}.{base.res_seq[row]}")
    assert set(lines) == expected and len(lines) == len(expected)
    assert {line[0] for line in lines} == {"R", "L"} and 10 < len(lines) < base.n_residues


@needs_lightdock
def test_restrained_docking_passes_every_true_interface_residue_to_lightdock(tmp_path: Path) -> None:
    base, _ = read_decoy(UNBOUND)
    ligand = default_ligand_chain(base)
    lines = true_interface_restraints(base, ligand).splitlines()
    config = replace(TINY, swarms=40, restraints="true_interface")
    rotations, translations, scores, swarms = dock(base, ligand, config, seed=7, workdir=tmp_path)
    setup = json.loads((tmp_path / "setup.json").read_text())
    # LightDock matched every restrained residue to its structures (it stops on an unknown one)
    assert sorted(setup["receptor_restraints"]["active"]) == sorted(l[2:] for l in lines if l[0] == "R")
    assert sorted(setup["ligand_restraints"]["active"]) == sorted(l[2:] for l in lines if l[0] == "L")
    n_receptor = sum(line[0] == "R" for line in lines)
    assert setup["swarms_per_restraint"] == max(1, 40 // n_receptor)
    # the swarms it kept next to the restraints, not the requested count, give the poses
    assert len(scores) == len(translations) == config.glowworms * setup["swarms"]
    assert np.unique(swarms).tolist() == list(range(setup["swarms"]))


def test_read_glowworms_rejects_flexible_runs(tmp_path: Path) -> None:
    rigid = tmp_path / "gso_1.out"
    rigid.write_text("#Coordinates  RecID  LigID  Luciferin  Neighbor's number  Vision Range  Scoring\n"
                     "(-22.7690581, -1.0092703, -16.0889047, -0.1883286,  0.4744023, -0.8468168,  0.1495861)"
                     "    0    0  22.00402466  0 0.400  14.52990833\n")
    translations, quaternions, scores = read_glowworms(rigid)
    assert translations.tolist() == [[-22.7690581, -1.0092703, -16.0889047]] and scores.tolist() == [14.52990833]
    assert quaternions.shape == (1, 4)
    flexible = tmp_path / "gso_2.out"
    flexible.write_text("(1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.1)    0    0  1.0  0 0.4  2.0\n")
    with pytest.raises(ValueError, match="ANM"):
        read_glowworms(flexible)


def test_pool_takes_best_scored_distinct_poses_then_near_natives() -> None:
    # five poses along x: 0 and 1 are 1 Å apart (1 is dropped), the rest are far apart
    ca = np.zeros((5, 4, 3))
    ca[:, :, 0] = np.array([0.0, 1.0, 10.0, 20.0, 30.0])[:, None]
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    distinct = distinct_by_score(ca, scores, min_rmsd=3.0)
    assert distinct.tolist() == [0, 2, 3, 4]
    dockq = np.array([0.1, 0.9, 0.05, 0.1, 0.5])
    members, sources = select_pool(distinct, dockq, PoolConfig(n_top=2, n_near=5))
    assert members.tolist() == [0, 2, 4] and sources.tolist() == [0, 0, 1]  # pose 3 is incorrect, 1 a duplicate


@needs_lightdock
def test_dock_pools_command_writes_a_samplesheet_and_resumes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from egr.cli import main
    from egr.runner import collect_inputs

    splits = tmp_path / "splits.tsv"
    splits.write_text("target\tset\tsplit\tgroup\tclusters\n2X9A\tbm5\ttest\t0\tbm5/2X9A/A,bm5/2X9A/B\n")
    args = ["dock-pools", "--root", str(Path(os.path.relpath(DATA.parent.parent))), "--splits", str(splits), "--outdir", str(tmp_path / "out"),
            "--split", "test", "--sets", "bm5", "--swarms", "2", "--glowworms", "4", "--steps", "2", "--top", "3"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    sheet = (tmp_path / "out" / "samplesheet.csv").read_text().splitlines()
    assert sheet[0] == "id,decoy,native" and len(sheet) - 1 >= 1
    assert sheet[1].startswith("2X9A_unbound_lightdock01,")
    scores = (tmp_path / "out" / "lightdock_scores.tsv").read_text().splitlines()
    assert scores[0] == "id\tlightdock_score" and len(scores) == len(sheet)
    inputs = collect_inputs(samplesheet=tmp_path / "out" / "samplesheet.csv")  # as egr run --input reads it
    assert all(item.path.is_file() and item.native.is_file() for item in inputs)
    assert read_decoy(inputs[0].path)[0].chain_names == ["A", "B"]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "1 bases kept from an earlier run" in again.output
    assert (tmp_path / "out" / "samplesheet.csv").read_text().splitlines() == sheet


@needs_lightdock
def test_pool_families_train_on_every_pose_and_validate_on_the_pool_members(tmp_path: Path) -> None:
    """A dock-pools folder as egr train reads it: the family of a base holds every LightDock pose with its
    DockQ label; validation scores the pool's members beside LightDock's score and contacts−clashes, and
    the criterion takes the pools' 2 · AUC − 1."""
    import pandas as pd
    import torch

    from egr.dock_pools import dock_dataset
    from egr.evaluate import roc_auc
    from egr.model import EGR
    from egr.physics import interface_physics
    from egr.train import TrainConfig, _criterion, epoch_steps, pool_families, pool_validation

    splits = tmp_path / "splits.tsv"
    splits.write_text("target\tset\tsplit\tgroup\tclusters\n2X9A\tbm5\tval\t0\tbm5/2X9A/A,bm5/2X9A/B\n")
    out = tmp_path / "pools"
    dock_dataset(DATA.parent.parent, splits, out, ["val"], ["bm5"], config=replace(TINY, swarms=3, n_top=4))
    assert pool_families(out, splits, "train") == []
    (family,) = pool_families(out, splits, "val")
    pool = load_pool(out / "bm5" / "2X9A_unbound.pool.npz")
    assert family.docked and family.key == "bm5/2X9A_unbound" and np.array_equal(family.dockq, pool.dockq)
    assert len(family.dockq) == 12  # every pose LightDock returned, not only the pool's members
    complex_, _ = family.member(int(pool.members()[0]))
    write_pdb(complex_, tmp_path / "member.pdb")
    assert dockq_scores(tmp_path / "member.pdb", NATIVE)["global_dockq"] == pytest.approx(pool.dockq[pool.members()[0]],
                                                                                          abs=1e-6)
    (members,) = pool_families(out, splits, "val", members_only=True)
    assert np.array_equal(members.dockq, pool.dockq[pool.members()])
    assert np.array_equal(members.member(1)[0].coords, family.member(int(pool.members()[1]))[0].coords)
    cfg = TrainConfig(groups_per_pool=3, groups_per_base=2)
    assert epoch_steps(0, [family], cfg) == [("family", 0)] * 3

    # so short a docking run finds no acceptable pose: label the first member acceptable, so that AUCs exist
    pool = replace(pool, dockq=np.where(np.arange(len(pool.dockq)) == pool.members()[0], 0.5, pool.dockq))
    save_pool(out / "bm5" / "2X9A_unbound.pool.npz", pool)
    (family,) = pool_families(out, splits, "val")
    torch.manual_seed(0)
    model = EGR(TrainConfig(hidden=8, num_layers=1, heads=2).model_config()).eval()
    result = pool_validation(model, [family], torch.device("cpu"))
    members = pool.members()
    truth = pd.Series(pool.dockq[members]) >= 0.23
    assert result["n_bases"] == 1 and result["n_poses"] == len(members)
    for name, score in (("lightdock", pool.score[members]),
                        ("contacts_clashes", [interface_physics(family.member(int(i))[0]).contacts_clashes
                                              for i in members])):
        expected = roc_auc(pd.Series(score, dtype=float), truth)
        assert np.isfinite(expected) and result[f"{name}_auc_acceptable"] == pytest.approx(expected)
    assert 0.0 <= result["egr_auc_acceptable"] <= 1.0
    record = {"val": {"docking_egr": {"spearman": 0.2}, "docking_pools": {"egr_auc_acceptable": 0.8}}}
    assert _criterion(record) == pytest.approx(-0.4)  # mean of 0.2 and 2 · 0.8 − 1


def test_max_targets_docks_the_same_seeded_subset_of_each_split(tmp_path: Path) -> None:
    from egr.dock_pools import plan_pool_jobs

    splits = tmp_path / "splits.tsv"
    splits.write_text("target\tset\tsplit\tgroup\tclusters\n"
                      "b2_2b2e_pdb1_0\tdips\ttrain\t0\tx\nkq_1kq1_pdb1_1\tdips\ttrain\t1\ty\n2X9A\tbm5\tval\t2\tz\n")
    root = DATA.parent.parent

    def planned(max_targets: int | None, seed: int = 0) -> list[str]:
        jobs, _ = plan_pool_jobs(root, splits, tmp_path, ["train", "val"], seed, TINY, ["bm5", "dips"], max_targets)
        return [job.target for job in jobs]

    every = planned(None)
    assert sorted(every) == ["2X9A", "b2_2b2e_pdb1_0", "kq_1kq1_pdb1_1"]
    one = planned(1)
    assert len(one) == 2 and "2X9A" in one and set(one) <= set(every)  # one per split
    assert planned(1) == one
    assert {t for seed in range(8) for t in planned(1, seed)} == set(every)  # the seed draws the subset
