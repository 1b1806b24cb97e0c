"""The refiner timeout (``--refiner-timeout``) for real, and what OpenMM relax records and repeats.

A real OpenMM relax of a real decoy is given less time than it needs: the cell must fail with the
timeout's reason, the record must say so, and nothing else may be left behind. A refiner that starts
its own program (as Modeller and GalaxyRefineComplex do) must have that program killed with it. A
relax given enough time in its child process must write the same bytes as one run in this process,
which is also the check that the relax is reproducible across processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from egr.baselines import baseline_command, run_baseline
from egr.baselines.common import BaselineResult, read_decoy, run_with_timeout, timeout_reason
from egr.cli import main

DATA = Path(__file__).parent / "data"
DECOY = DATA / "decoys" / "1EFN_unbound.pdb.gz"  # 1,305 heavy atoms: the smallest bundled decoy


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def start_program_then_wait(pid_file: Path, out_pdb: Path) -> BaselineResult:
    """A refiner's work as the subprocess-based adapters do it: start a program (here ``sleep``) and wait
    for it. Module-level so that the timeout's spawned child can import it."""
    program = subprocess.Popen(["sleep", "300"])
    pid_file.write_text(str(program.pid))
    program.wait()
    return BaselineResult("galaxy", "ok", "", 0.0, None)


def exit_at_once(out_pdb: Path) -> BaselineResult:
    """A refiner's process that dies without a result (as one killed for memory would)."""
    os._exit(3)


def test_a_refiner_process_that_dies_fails_its_cell(tmp_path: Path) -> None:
    result = run_with_timeout("openmm", tmp_path / "x_openmm.pdb", 60.0, exit_at_once)
    assert result.status == "failed"
    assert result.reason == "openmm: refiner process died without a result (exit code 3)"
    assert list(tmp_path.iterdir()) == []


def test_timeout_fails_a_real_relax_with_the_reason_and_leaves_only_the_record(tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    result = baseline_command("openmm", DECOY, outdir, refiner_timeout_s=0.5)
    # a relax of this decoy takes seconds (PDBFixer alone more than 0.5 s): only the timeout ends it here
    assert result.status == "failed" and result.output is None
    assert result.reason == "openmm: exceeded the 0.5 s refiner timeout" == timeout_reason("openmm", 0.5)
    folder = outdir / "1EFN_unbound"
    # no model, no scratch folder of the killed child: the record alone
    assert sorted(p.name for p in folder.iterdir()) == ["1EFN_unbound_openmm.json"]
    record = json.loads((folder / "1EFN_unbound_openmm.json").read_text())
    assert record["status"] == "failed" and record["reason"] == result.reason and record["output"] is None
    assert record["details"] == {"refiner_timeout_s": 0.5}
    assert multiprocessing.active_children() == []  # the child was killed and reaped


def test_timeout_kills_the_program_a_refiner_started(tmp_path: Path) -> None:
    import functools

    pid_file = tmp_path / "program.pid"
    work = functools.partial(start_program_then_wait, pid_file)
    result = run_with_timeout("galaxy", tmp_path / "x_galaxy.pdb", 3.0, work)
    assert result.status == "failed" and result.reason == "galaxy: exceeded the 3 s refiner timeout"
    program = int(pid_file.read_text())
    deadline = time.monotonic() + 10  # SIGKILL is immediate; init reaps the orphan shortly after
    while _alive(program) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(program), "the refiner's own program survived the timeout"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["program.pid"]


def test_relax_within_its_timeout_equals_the_relax_in_this_process(tmp_path: Path) -> None:
    here = run_baseline("openmm", DECOY, tmp_path / "here" / "1EFN_openmm.pdb")
    child = run_baseline("openmm", DECOY, tmp_path / "child" / "1EFN_openmm.pdb", refiner_timeout_s=300)
    assert here.status == child.status == "ok", (here.reason, child.reason)
    assert child.output == tmp_path / "child" / "1EFN_openmm.pdb"
    assert sorted(p.name for p in child.output.parent.iterdir()) == ["1EFN_openmm.pdb"]  # scratch removed
    assert child.details["refiner_timeout_s"] == 300
    # another process, same model to the byte: hydrogens placed under a fixed seed, one CPU thread
    assert child.output.read_bytes() == here.output.read_bytes()
    assert child.details["energy_before_kj_mol"] == here.details["energy_before_kj_mol"]


def test_relax_records_its_cutoff_and_repeats_itself_whatever_the_random_state() -> None:
    pytest.importorskip("openmm")
    from egr.baselines.openmm_relax import relax

    decoy, _ = read_decoy(DECOY)
    random.seed(11)
    first = relax(decoy)
    random.seed(12)  # PDBFixer jitters hydrogens with this generator: another state, same result
    second = relax(decoy)
    assert np.array_equal(first[0].xyz, second[0].xyz)
    assert first[1]["energy_before_kj_mol"] == second[1]["energy_before_kj_mol"]
    state = random.getstate()
    relax(decoy)
    assert random.getstate() == state  # the caller's random stream is left as it was
    details = first[1]
    assert details["nonbonded_method"] == "CutoffNonPeriodic" and details["cutoff_nm"] == 1.0
    assert "reaction-field" in details["nonbonded_note"]
    assert details["n_atoms_system"] > decoy.n_atoms  # hydrogens added
    if details["platform"] == "CPU":
        assert details["platform_properties"] == {"DeterministicForces": "true", "Threads": "1"}


def test_relax_without_cutoff_is_recorded_and_gbn2_needs_one(tmp_path: Path) -> None:
    result = run_baseline("openmm", DECOY, tmp_path / "a.pdb", cutoff_nm=None, max_iterations=5)
    assert result.status == "ok", result.reason
    assert result.details["nonbonded_method"] == "NoCutoff" and result.details["cutoff_nm"] is None
    result = run_baseline("openmm", DECOY, tmp_path / "b.pdb", solvent="gbn2", cutoff_nm=None)
    assert result.status == "failed" and "needs a cutoff" in result.reason


def test_cli_refiner_timeout(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["baseline", "openmm", str(DECOY), "--outdir", str(tmp_path), "--refiner-timeout", "0.5"])
    assert done.exit_code == 1
    assert "openmm: exceeded the 0.5 s refiner timeout" in done.output
    record = json.loads((tmp_path / "1EFN_unbound" / "1EFN_unbound_openmm.json").read_text())
    assert record["status"] == "failed"
    for bad in ("0", "-3", "soon"):
        done = runner.invoke(main, ["baseline", "openmm", str(DECOY), "--outdir", str(tmp_path), "--refiner-timeout", bad])
        assert done.exit_code == 2, bad


def test_run_fails_the_timed_out_cell_and_goes_on(tmp_path: Path) -> None:
    """`egr run` with a refiner timeout too short for OpenMM: EGR's own output and the run stand, the
    openmm cell of each decoy fails with the reason (in the record and in summary.tsv)."""
    from egr.pipeline import PrepOptions
    from egr.runner import RunOptions, collect_inputs, run

    decoys = [str(DECOY), str(DATA / "decoys" / "kq_1kq1_pdb1_1_HDOCK.pdb.gz")]
    inputs = [item for pattern in decoys for item in collect_inputs(pattern)]
    options = RunOptions(outdir=tmp_path / "out", prep=PrepOptions(surface_backend="builtin"), refiners=("egr", "openmm"),
                         refiner_timeout=0.5, progress=False, report=False, workers=2)
    rows = run(inputs, options)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    for item in inputs:
        record = json.loads((tmp_path / "out" / item.id / f"{item.id}_openmm.json").read_text())
        assert record["status"] == "failed" and record["reason"] == "openmm: exceeded the 0.5 s refiner timeout"
        assert not (tmp_path / "out" / item.id / f"{item.id}_openmm.pdb").exists()
        assert (tmp_path / "out" / item.id / f"{item.id}_refined.pdb").is_file()
    summary = (tmp_path / "out" / "summary.tsv").read_text()
    assert summary.count("openmm: exceeded the 0.5 s refiner timeout") == 2, summary


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_alive_helper_sees_a_live_and_a_dead_process() -> None:
    program = subprocess.Popen(["sleep", "30"])
    assert _alive(program.pid)
    program.kill()
    program.wait()
    assert not _alive(program.pid) and _alive(os.getpid())
