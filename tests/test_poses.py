"""Rigid-body pose sampler (egr.poses): DockQ labels against the DockQ package, rigid moves, storage, CLI.

The structures are real: the DIPS homodimer kq_1kq1_pdb1_1 (native base; DockQ picks the swapped mapping for
some poses) and BM5 2X9A (unbound base, whose residues differ from the native's). They are read from
``shared/data`` when it is there, otherwise from the byte-identical copies in ``tests/data`` (SOURCES.md).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.distance import cdist

from egr import poses as P
from egr.cli import main
from egr.metrics import dockq_scores
from egr.structure import read_decoy, write_pdb

TESTS = Path(__file__).parent
SHARED = Path(os.environ.get("EGR_SHARED_DATA", TESTS.parents[1] / "shared" / "data"))
FILES = {
    "dips_native": ("dips/kq_1kq1_pdb1_1/native/kq_1kq1_pdb1_1.pdb.gz", "natives/kq_1kq1_pdb1_1.pdb.gz"),
    "bm5_native": ("bm5/2X9A/native/2X9A.pdb.gz", "natives/2X9A.pdb.gz"),
    "bm5_unbound": ("bm5/2X9A/decoys/2X9A_unbound.pdb.gz", "decoys/2X9A_unbound.pdb.gz"),
}


def _data(key: str) -> Path:
    shared, bundled = FILES[key]
    for path in (SHARED / shared, TESTS / "data" / bundled):
        if path.is_file():
            return path
    pytest.skip(f"{shared} is in neither {SHARED} nor tests/data")


EMBEDDING = P.SamplerConfig(embedded_fraction=0.1)


def _base(tmp: Path, source: Path, name: str):
    complex_, _ = read_decoy(source)
    path = tmp / f"{name}.base.pdb"
    write_pdb(complex_, path)
    return read_decoy(path)[0], path


@pytest.fixture(scope="module")
def sampled(tmp_path_factory) -> dict:
    """Small pose sets of both bases (n=16: identity, 11 near-native, 2 wrong-site, 2 embedded)."""
    tmp = tmp_path_factory.mktemp("poses")
    out = {}
    for name, source, native in (("dips", "dips_native", "dips_native"), ("bm5", "bm5_unbound", "bm5_native")):
        base, path = _base(tmp, _data(source), name)
        out[name] = {"base": base, "file": path, "native": _data(native),
                     "poses": P.sample_poses(base, _data(native), n=16, seed=7, base_file=path, config=EMBEDDING)}
    return out


@pytest.mark.parametrize("name", ["dips", "bm5"])
def test_labels_equal_dockq_package(sampled, name: str, tmp_path: Path) -> None:
    case = sampled[name]
    poses, base = case["poses"], case["base"]
    picks = [0, *np.flatnonzero(poses.kind == 1)[[0, 3, 6, 9]], *np.flatnonzero(poses.kind >= 2)[[0, -1]]]
    for i in picks:
        path = tmp_path / f"pose{i}.pdb"
        write_pdb(base.with_coords(P.pose_coords(base, poses, i)), path)
        scores = dockq_scores(path, case["native"])
        (interface,) = scores["interfaces"].values()
        assert poses.dockq[i] == pytest.approx(scores["global_dockq"], abs=1e-3), i
        assert poses.fnat[i] == pytest.approx(interface["fnat"], abs=1e-3), i
        assert poses.irmsd[i] == pytest.approx(interface["irmsd"], abs=1e-2), i
        assert poses.lrmsd[i] == pytest.approx(interface["lrmsd"], abs=1e-2), i
        assert str(poses.mapping[i]) == scores["mapping"], i


def test_labels_span_classes_and_kinds(sampled) -> None:
    poses = sampled["dips"]["poses"]
    assert len(poses) == 16 and poses.kind[0] == 0
    assert np.bincount(poses.kind, minlength=4).tolist() == [1, 11, 2, 2]
    assert set(poses.capri_class[poses.kind == 1].tolist()) == {0, 1, 2, 3}  # near-native reach every class
    assert poses.dockq[poses.kind >= 2].max() < 0.23  # random sites of a homodimer are wrong


def test_embedded_poses_replace_the_last_wrong_site_ones_only(sampled) -> None:
    """The default (no embedded poses) gives the same poses up to the embedded ones: the share only turns
    the last wrong-site approaches into embedded ones."""
    case = sampled["dips"]
    default = P.sample_poses(case["base"], case["native"], n=16, seed=7, base_file=case["file"])
    assert np.bincount(default.kind, minlength=4).tolist() == [1, 11, 4, 0]
    embedded = case["poses"]
    np.testing.assert_array_equal(default.rotations[:14], embedded.rotations[:14])
    np.testing.assert_array_equal(default.translations[:14], embedded.translations[:14])
    assert (embedded.clashes[embedded.kind == 3] > default.clashes[default.kind == 2].max()).all()


@pytest.mark.parametrize("name", ["dips", "bm5"])
def test_pushed_poses_drive_the_right_site_into_the_receptor_and_lose_dockq_with_depth(sampled, name: str,
                                                                                      tmp_path: Path) -> None:
    case = sampled[name]
    base = case["base"]
    poses = P.sample_poses(base, case["native"], n=16, seed=7, base_file=case["file"],
                           config=P.SamplerConfig(pushed_fraction=0.2))
    pushed = np.flatnonzero(poses.kind == 5)
    assert len(pushed) == 3 and (poses.kind[1:12] == 1).all() and (poses.kind[15:] != 5).all()
    np.testing.assert_array_equal(poses.rotations[pushed], np.broadcast_to(np.eye(3), (3, 3, 3)))
    # straight towards the receptor's centroid, 1-12 Å
    ligand = P.ligand_mask(base, poses.ligand_chain)
    inwards = base.coords[~ligand].mean(0) - base.coords[ligand].mean(0)
    depth = np.linalg.norm(poses.translations[pushed], axis=1)
    assert ((depth >= 1.0) & (depth <= 12.0)).all()
    np.testing.assert_allclose(poses.translations[pushed] / depth[:, None],
                               np.broadcast_to(inwards / np.linalg.norm(inwards), (3, 3)), atol=1e-9)
    # deeper is worse and clashes more (a shallow push may still gain on an unbound base, whose ligand does not
    # sit where the native's does); the label is DockQ's
    order = pushed[np.argsort(depth)]
    assert (np.diff(poses.dockq[order]) < 0).all() and poses.dockq[order[-1]] < poses.dockq[0]
    assert (np.diff(poses.clashes[order]) > 0).all() and (poses.clashes[order] > poses.clashes[0]).all()
    deepest = order[-1]
    path = tmp_path / "pushed.pdb"
    write_pdb(base.with_coords(P.pose_coords(base, poses, deepest)), path)
    assert poses.dockq[deepest] == pytest.approx(dockq_scores(path, case["native"])["global_dockq"], abs=1e-3)


def test_docked_poses_climb_from_the_wrong_site_touch_to_more_contacts(sampled, tmp_path: Path) -> None:
    """A docked pose starts from the wrong-site approach the default would have made there and climbs to a
    higher contacts − 10 × clashes within the clash budget; its counts and DockQ label stay exact."""
    case = sampled["dips"]
    base, native = case["base"], case["native"]
    default = P.sample_poses(base, native, n=16, seed=7, base_file=case["file"])
    docked = P.sample_poses(base, native, n=16, seed=7, base_file=case["file"],
                            config=P.SamplerConfig(docked_fraction=0.14))
    assert np.bincount(docked.kind, minlength=5).tolist() == [1, 11, 2, 0, 2]
    np.testing.assert_array_equal(default.rotations[:14], docked.rotations[:14])
    score = lambda poses, i: int(poses.contacts[i]) - 10 * int(poses.clashes[i])  # noqa: E731
    assert score(docked, 14) > score(default, 14)
    mask = P.ligand_mask(base, docked.ligand_chain)
    top = max(3, P.DockQLabeller(base, case["file"], native).native_clashes)
    for i in (14, 15):
        coords = P.pose_coords(base, docked, i)
        d = cdist(coords[mask], coords[~mask])
        assert int((d < 3.0).sum()) == docked.clashes[i] <= top, i
        assert int((d < 5.0).sum()) == docked.contacts[i], i
    path = tmp_path / "docked.pdb"
    write_pdb(base.with_coords(P.pose_coords(base, docked, 15)), path)
    assert docked.dockq[15] == pytest.approx(dockq_scores(path, native)["global_dockq"], abs=1e-3)


def test_identity_pose_has_the_base_dockq(sampled) -> None:
    dips, bm5 = sampled["dips"]["poses"], sampled["bm5"]["poses"]
    assert dips.dockq[0] == pytest.approx(1.0, abs=1e-9) and dips.fnat[0] == 1.0
    assert dips.irmsd[0] < 1e-4 and dips.lrmsd[0] < 1e-4
    assert np.array_equal(dips.rotations[0], np.eye(3)) and not dips.translations[0].any()
    expected = dockq_scores(sampled["bm5"]["file"], sampled["bm5"]["native"])["global_dockq"]
    assert bm5.dockq[0] == pytest.approx(expected, abs=1e-6) and 0.5 < bm5.dockq[0] < 0.8


def test_same_seed_same_poses(sampled) -> None:
    case = sampled["dips"]
    again = P.sample_poses(case["base"], case["native"], n=16, seed=7, base_file=case["file"], config=EMBEDDING)
    for name in ("rotations", "translations", "kind", "dockq", "fnat", "irmsd", "lrmsd", "clashes", "mapping"):
        assert np.array_equal(getattr(again, name), getattr(case["poses"], name)), name
    other = P.sample_poses(case["base"], case["native"], n=16, seed=8, base_file=case["file"], config=EMBEDDING)
    assert not np.allclose(other.translations, case["poses"].translations)


def test_rigid_move_round_trip(sampled) -> None:
    case = sampled["bm5"]
    base, poses = case["base"], case["poses"]
    mask = P.ligand_mask(base, poses.ligand_chain)
    assert poses.ligand_chain == "B" and poses.receptor_chain == "A"
    assert np.allclose(poses.centre, base.coords[mask].mean(0))
    for i in range(len(poses)):
        r, t = poses.rotations[i], poses.translations[i]
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.linalg.det(r) == pytest.approx(1.0)
        moved = P.pose_coords(base, poses, i)
        assert np.array_equal(moved[~mask], base.coords[~mask])
        assert np.allclose(moved[mask].mean(0), poses.centre + t)
        # the inverse move: rotation Rᵀ about the moved centroid, translation −t
        back = P.apply_pose(moved, mask, r.T, -t, centre=poses.centre + t)
        assert np.allclose(back, base.coords, atol=1e-9)
        # x' = (x − c) Rᵀ + c + t, written out
        assert np.allclose(moved[mask], (base.coords[mask] - poses.centre) @ r.T + poses.centre + t)
    q = np.array([[np.cos(0.3), np.sin(0.3), 0.0, 0.0]])  # 0.6 rad about x
    assert np.allclose(P.quaternion_to_matrix(q)[0], P.axis_angle_matrix(np.array([1.0, 0, 0]), 0.6))


@pytest.mark.parametrize("name", ["dips", "bm5"])
def test_slid_poses_touch_and_only_embedded_ones_interpenetrate(sampled, name: str) -> None:
    case = sampled[name]
    base, poses = case["base"], case["poses"]
    mask = P.ligand_mask(base, poses.ligand_chain)
    top = max(3, P.DockQLabeller(base, case["file"], case["native"]).native_clashes)
    for i in range(1, len(poses)):
        coords = P.pose_coords(base, poses, i)
        d = cdist(coords[mask], coords[~mask])
        assert int((d < 3.0).sum()) == poses.clashes[i], i  # clashes counted exactly
        assert int((d < 5.0).sum()) == poses.contacts[i] > 0, i
        if poses.kind[i] == 3:
            assert poses.clashes[i] > top, i  # embedded: pushed past the first touch
        else:
            assert poses.clashes[i] <= top, i  # within the budget
    if name == "bm5":
        assert poses.clashes[0] > 50  # the unbound base itself interpenetrates; its poses do not


def test_base_clash_budget_lets_unbound_poses_keep_the_base_interpenetration(sampled) -> None:
    """With the base's budget, poses of the unbound base may clash as much as the base itself (not more),
    and more of them clash beyond the native's budget than with the native's alone."""
    case = sampled["bm5"]
    base, native_budget = case["base"], case["poses"]
    poses = P.sample_poses(base, case["native"], n=16, seed=7, base_file=case["file"],
                           config=P.SamplerConfig(clash_budget_from_base=True))
    top_native = max(3, P.DockQLabeller(base, case["file"], case["native"]).native_clashes)
    assert poses.clashes[0] == native_budget.clashes[0] > top_native
    assert np.all(poses.clashes[1:] <= poses.clashes[0])
    assert np.sum(poses.clashes[1:] > top_native) > np.sum(native_budget.clashes[1:] > top_native) == 2  # embedded


def test_save_and_load_without_pickles(sampled, tmp_path: Path) -> None:
    poses = sampled["dips"]["poses"]
    path = tmp_path / "x.poses.npz"
    P.save_poses(path, poses)
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
        assert data["rotations"].dtype == np.float64 and data["translations"].shape == (16, 3)
        assert str(data["format"]) == P.POSES_FORMAT
    loaded = P.load_poses(path)
    for name in ("rotations", "translations", "centre", "kind", "dockq", "fnat", "irmsd", "lrmsd", "clashes",
                 "contacts", "mapping"):
        assert np.array_equal(getattr(loaded, name), getattr(poses, name)), name
    for name in ("ligand_chain", "receptor_chain", "seed", "base_name", "base_sha256", "native_name",
                 "native_sha256", "params"):
        assert getattr(loaded, name) == getattr(poses, name), name
    assert loaded.base_name == "dips.base.pdb" and len(loaded.base_sha256) == 64
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception):
        P.load_poses(tmp_path / "bad.npz")


def _root(tmp: Path) -> tuple[Path, Path]:
    """A shared/data-like root with one dips target, one bm5 target and a 3-chain target, plus its splits."""
    root = tmp / "data"
    for rel, key in (("dips/kq_1kq1_pdb1_1/native/kq_1kq1_pdb1_1.pdb.gz", "dips_native"),
                     ("bm5/2X9A/native/2X9A.pdb.gz", "bm5_native"),
                     ("bm5/2X9A/decoys/2X9A_unbound.pdb.gz", "bm5_unbound")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(_data(key).resolve())
    three, _ = read_decoy(_data("dips_native"))
    chains = three.chain_ids.copy()
    chains[three.residue_index >= three.n_residues - 20] = "C"
    (root / "dips/three/native").mkdir(parents=True)
    write_pdb(three.__class__(**{**three.__dict__, "chain_ids": chains,
                                 "chain_index": np.unique(chains, return_inverse=True)[1]}),
              root / "dips/three/native/three.pdb")
    splits = tmp / "splits.tsv"
    splits.write_text("target\tset\tsplit\tgroup\tclusters\n2X9A\tbm5\ttrain\t0\tx\n"
                      "kq_1kq1_pdb1_1\tdips\tval\t1\ty\nthree\tdips\ttrain\t2\tz\n2X9A\tbm5x\ttest\t3\tw\n")
    return root, splits


def test_sample_poses_command(tmp_path: Path) -> None:
    root, splits = _root(tmp_path)
    out = tmp_path / "poses"
    args = ["sample-poses", "--root", str(root), "--splits", str(splits), "--outdir", str(out),
            "--per-target", "6", "--seed", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "CAPRI classes: incorrect" in result.output and "skipped dips/three" in result.output
    with open(out / "index.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [(r["set"], r["base_id"], r["split"], r["n_poses"]) for r in rows] == [
        ("bm5", "2X9A_native", "train", "6"), ("bm5", "2X9A_unbound", "train", "6"),
        ("dips", "kq_1kq1_pdb1_1_native", "val", "6")]
    assert rows[0]["base_dockq"] == "1.0"
    skipped = (out / "skipped.tsv").read_text()
    assert "three" in skipped and "3 protein chains" in skipped
    for row in rows:
        base, _ = read_decoy(out / row["set"] / f"{row['base_id']}.base.pdb")
        poses = P.load_poses(out / row["set"] / f"{row['base_id']}.poses.npz")
        assert len(poses) == 6 and poses.base_name == f"{row['base_id']}.base.pdb"
        assert P.pose_coords(base, poses, 5).shape == base.coords.shape
    # the seed depends on (seed, set, target, base) only
    unbound = P.load_poses(out / "bm5/2X9A_unbound.poses.npz")
    assert unbound.seed == P._derive_seed(3, "bm5", "2X9A", "2X9A_unbound")
    # a second run keeps every complete output
    stamp = (out / "bm5/2X9A_unbound.poses.npz").stat().st_mtime_ns
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "3 bases kept from an earlier run" in again.output
    assert (out / "bm5/2X9A_unbound.poses.npz").stat().st_mtime_ns == stamp


def test_sample_poses_refuses_kind_shares_beyond_all_poses(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from egr.cli import main

    splits = tmp_path / "splits.tsv"
    splits.write_text("target\tset\tsplit\tgroup\tclusters\n")
    result = CliRunner().invoke(main, ["sample-poses", "--root", str(TESTS / "data" / "pairs"), "--splits", str(splits),
                                       "--outdir", str(tmp_path / "out"), "--pushed-fraction", "0.2",
                                       "--docked-fraction", "0.1"])
    assert result.exit_code == 2 and "embedded, docked and pushed poses exceed all poses" in result.output
    assert not (tmp_path / "out").exists()
