"""Sequence-aware splits: MMseqs2 clustering of real native chains, connected groups, seeded assignment."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from egr.split import (SPLITS, assign_groups, chain_sequences, connected_groups, make_splits, read_splits,
                       split_summary, write_splits)

PAIRS = Path(__file__).parent / "data" / "pairs"

needs_mmseqs = pytest.mark.skipif(shutil.which("mmseqs") is None,
                                  reason="MMseqs2 binary not on PATH (Debian: apt-get install mmseqs2)")


def test_connected_groups_are_transitive() -> None:
    # targets 0-1 share cluster 7, targets 1-2 share cluster 9, target 3 is alone
    target_of_chain = np.array([0, 0, 1, 1, 2, 3])
    cluster_of_chain = np.array([7, 8, 7, 9, 9, 5])
    groups = connected_groups(target_of_chain, cluster_of_chain, n_targets=4)
    assert groups.tolist() == [0, 0, 0, 1]


def test_assign_groups_keeps_groups_whole_and_follows_fractions() -> None:
    groups = np.repeat(np.arange(100), 1)  # 100 singleton groups
    groups = np.concatenate([groups, np.full(10, 3)])  # group 3 holds 11 targets
    split = assign_groups(groups, (0.7, 0.15, 0.15), seed=1)
    assert len(set(split[groups == 3].tolist())) == 1
    counts = np.bincount(split, minlength=3) / len(split)
    assert np.allclose(counts, (0.7, 0.15, 0.15), atol=0.1)
    assert np.array_equal(split, assign_groups(groups, (0.7, 0.15, 0.15), seed=1))


def test_chain_sequences_reads_every_protein_chain() -> None:
    seqs = chain_sequences("dips", "kq_1kq1_pdb1_1", PAIRS / "dips/kq_1kq1_pdb1_1/native/kq_1kq1_pdb1_1.pdb.gz")
    assert sorted(s.chain for s in seqs) == ["A", "H"]
    assert all(len(s.sequence) >= 60 and set(s.sequence) <= set("ACDEFGHIKLMNPQRSTVWYX") for s in seqs)


@needs_mmseqs
def test_no_cluster_spans_two_splits(tmp_path: Path) -> None:
    # real natives of five targets, plus bm5/2X9A's native again under another set name: the same
    # protein in two sets (like bm5/1AK4 and haddock/1AK4) must land in one group and one split
    root = tmp_path / "data"
    for set_name, target in [("bm5", "2X9A"), ("dips", "kq_1kq1_pdb1_1"), ("haddock", "1AK4"), ("haddock", "1EFN"),
                             ("dockq_examples", "1A2K")]:
        shutil.copytree(PAIRS / set_name / target / "native", root / set_name / target / "native")
    shutil.copytree(PAIRS / "bm5/2X9A/native", root / "copies" / "2X9A_again" / "native")
    sets = ["bm5", "dips", "haddock", "dockq_examples", "copies"]
    rows = make_splits(root, sets, fractions=(0.34, 0.33, 0.33), seed=3)

    assert len(rows) == 6 and {r.split for r in rows} <= set(SPLITS)
    split_of_cluster: dict[str, set[str]] = {}
    for r in rows:
        for cluster in r.clusters:
            split_of_cluster.setdefault(cluster, set()).add(r.split)
    assert all(len(s) == 1 for s in split_of_cluster.values()), split_of_cluster
    by_key = {(r.set_name, r.target): r for r in rows}
    original, again = by_key[("bm5", "2X9A")], by_key[("copies", "2X9A_again")]
    assert original.group == again.group and original.split == again.split
    assert original.clusters == again.clusters
    # the homodimer's two identical chains fall into one cluster
    assert len(by_key[("dips", "kq_1kq1_pdb1_1")].clusters) == 1

    write_splits(rows, tmp_path / "splits.tsv")
    assert read_splits(tmp_path / "splits.tsv") == rows
    assert sum(sum(v.values()) for v in split_summary(rows).values()) == 6


def test_split_samplesheet_lists_the_decoys_of_one_splits_targets_for_egr_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from egr.cli import main
    from egr.runner import collect_inputs
    from egr.split import TargetSplit

    splits = tmp_path / "splits.tsv"
    write_splits([TargetSplit("1AK4", "haddock", "test", 0, ("c1",)), TargetSplit("1EFN", "haddock", "train", 1, ("c2",)),
                  TargetSplit("2X9A", "bm5", "test", 2, ("c3",)), TargetSplit("b2_2b2e_pdb1_0", "dips", "val", 3, ("c4",))],
                 splits)
    out = tmp_path / "lists" / "test.csv"
    invoke = CliRunner().invoke
    result = invoke(main, ["split-samplesheet", "--root", str(PAIRS), "--splits", str(splits), "--sets",
                           "bm5,dips,haddock", "--out", str(out)])
    assert result.exit_code == 0, result.output
    inputs = collect_inputs(samplesheet=out)
    expected = sorted(p.name for target in ("haddock/1AK4", "bm5/2X9A") for p in (PAIRS / target / "decoys").iterdir())
    assert sorted(item.path.name for item in inputs) == expected  # 1EFN (train), dips (val), kq_1kq1 (unlisted) left out
    assert all(Path(item.input).is_absolute() and item.path.is_file() and item.native is not None
               and item.native.is_absolute() and item.native.parent.name == "native" for item in inputs)
    assert {item.native.parent.parent.name for item in inputs} == {"1AK4", "2X9A"}
    assert f"{len(expected)} decoys of 2 targets" in result.output

    result = invoke(main, ["split-samplesheet", "--root", str(PAIRS), "--splits", str(splits), "--split", "val",
                           "--sets", "haddock", "--out", str(out)])
    assert result.exit_code == 2 and "no decoy of the val targets" in result.output
    (tmp_path / "not_splits.tsv").write_text("a\tb\n")
    result = invoke(main, ["split-samplesheet", "--root", str(PAIRS), "--splits", str(tmp_path / "not_splits.tsv"),
                           "--sets", "haddock", "--out", str(out)])
    assert result.exit_code == 1 and "not a splits table" in result.output and "Traceback" not in result.output
