"""Shared fixtures: paths of the bundled real decoys and text helpers to derive malformed inputs from them."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
DECOYS = DATA / "decoys"
NATIVES = DATA / "natives"


@pytest.fixture(scope="session")
def decoy_paths() -> list[Path]:
    paths = sorted(DECOYS.glob("*.pdb.gz"))
    assert paths, "bundled decoys missing from tests/data/decoys"
    return paths


@pytest.fixture(scope="session")
def small_decoy() -> Path:
    return DECOYS / "2X9A_unbound.pdb.gz"


@pytest.fixture(scope="session")
def small_decoy_text(small_decoy: Path) -> str:
    return gzip.decompress(small_decoy.read_bytes()).decode()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the test: the test machines are shared, and small graphs run as fast on one."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
