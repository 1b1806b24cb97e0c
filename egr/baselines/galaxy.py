"""GalaxyRefineComplex baseline (Heo, Lee & Seok, Sci. Rep. 6:32153, 2016).

The user provides the program (Linux standalone from seoklab; GitHub ``seoklab/GalaxyRefineComplex``);
its folder comes from the ``galaxy_home`` option or ``$EGR_GALAXY_HOME`` and must hold
``bin/GalaxyRefineComplex`` and ``data/``. Usage of the standalone, per its README::

    $GALAXY_HOME/bin/GalaxyRefineComplex -p INPUT.pdb -t TITLE [-s N_SAMPLE] [-o N_OUTPUT]
        [--sym] [--protocol1 | --protocol2]

It works in ``./TITLE/`` (``init/``, ``refine/``, ``model/``) and leaves the refined models as
``TITLE/model/model_1.pdb`` … ``model_N.pdb`` (default N = 10) with an energy table
``TITLE/model/energy_s.dat`` (``MODEL_01  -24687.5760`` per line, lowest first). Models are ATOM
records up to the coordinates, with hydrogens (PDB v2 names such as ``1HD2``) and a terminal OXT.
It needs distinct chain IDs separated by ``TER`` and no gaps inside a chain, which the sanitised
input (one chain per unbroken segment) provides. ``NSLOTS`` sets its MPI slots and ``EXEC_MPI``
its mpiexec (read from the environment by the program itself).

The top model (lowest energy in the table) is mapped back onto the decoy's chain IDs, residue
numbers and insertion codes by order.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from egr.structure import Complex

from .common import BaselineError, Refined, last_line, refined_from_structure, sanitised_pdb

ENV_HOME = "EGR_GALAXY_HOME"
JOB_TITLE = "egr"
INPUT_FILE = "input.pdb"


def resolve_home(galaxy_home: str | Path | None = None) -> Path | None:
    """The GalaxyRefineComplex folder: the option, else ``$EGR_GALAXY_HOME``, else None."""
    chosen = galaxy_home or os.environ.get(ENV_HOME)
    return Path(chosen) if chosen else None


def executable(home: Path) -> Path:
    """The program inside its folder."""
    return home / "bin" / "GalaxyRefineComplex"


def available(galaxy_home: str | Path | None = None) -> tuple[bool, str]:
    """Whether a GalaxyRefineComplex installation is configured and runnable, and why not."""
    home = resolve_home(galaxy_home)
    if home is None:
        return False, f"GalaxyRefineComplex not configured (set ${ENV_HOME} or the galaxy_home option)"
    program = executable(home)
    if not program.is_file() or not os.access(program, os.X_OK):
        return False, f"no executable {program} (run the distribution's install.sh)"
    if not (home / "data").is_dir():
        return False, f"{home} has no data/ folder"
    return True, ""


def command(
    program: Path,
    input_pdb: str,
    title: str = JOB_TITLE,
    *,
    n_sample: int | None = None,
    n_output: int | None = None,
    symmetric: bool = False,
    protocol: int | None = None,
) -> list[str]:
    """GalaxyRefineComplex's command line.

    Args:
        program: path to ``bin/GalaxyRefineComplex``.
        input_pdb: input PDB path (relative to the working folder is fine).
        title: job title, also the name of the folder it works in.
        n_sample: sampling trajectories (program default 32 = 16 × 2 protocols).
        n_output: refined models written (program default 10).
        symmetric: symmetric refinement of a homo-oligomer (identical chains only).
        protocol: 1 or 2 to run only that protocol; None runs both.
    """
    if protocol not in (None, 1, 2):
        raise ValueError(f"protocol must be 1, 2 or None, got {protocol!r}")
    cmd = [str(program), "-p", input_pdb, "-t", title]
    if n_sample is not None:
        cmd += ["-s", str(n_sample)]
    if n_output is not None:
        cmd += ["-o", str(n_output)]
    if symmetric:
        cmd.append("--sym")
    if protocol is not None:
        cmd.append(f"--protocol{protocol}")
    return cmd


def read_energy_table(path: Path) -> list[tuple[int, float]]:
    """Rows of ``energy_s.dat`` as (model number, energy), lowest energy first."""
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].upper().startswith("MODEL_"):
            rows.append((int(fields[0].split("_", 1)[1]), float(fields[1])))
    if not rows:
        raise BaselineError(f"{path.name} lists no models")
    return sorted(rows, key=lambda row: row[1])


def top_model(model_dir: Path) -> tuple[Path, float]:
    """The lowest-energy model in a GalaxyRefineComplex ``model/`` folder, and its energy."""
    table = model_dir / "energy_s.dat"
    if not table.is_file():
        raise BaselineError(f"GalaxyRefineComplex wrote no energy table {table.name}")
    number, energy = read_energy_table(table)[0]
    path = model_dir / f"model_{number}.pdb"
    if not path.is_file():
        raise BaselineError(f"energy table lists model {number} but {path.name} is missing")
    return path, energy


def refine(
    decoy: Complex,
    workdir: Path,
    *,
    galaxy_home: str | Path | None = None,
    threads: int | None = None,
    n_sample: int | None = None,
    n_output: int | None = None,
    symmetric: bool = False,
    protocol: int | None = None,
    timeout_s: float = 4 * 3600.0,
) -> tuple[Refined, dict[str, Any]]:
    """Run GalaxyRefineComplex on the decoy and return its top model mapped onto the decoy.

    Args:
        decoy: the decoy (heavy atoms, from :func:`egr.baselines.common.read_decoy`).
        workdir: scratch folder; the program runs there and creates ``egr/``.
        galaxy_home: the program's folder (default ``$EGR_GALAXY_HOME``).
        threads: MPI slots (``NSLOTS``); it uses at most one per trajectory.
        n_sample, n_output, symmetric, protocol: passed to :func:`command`.
        timeout_s: wall-clock limit in seconds (the paper reports ~20 min per decoy on 16 threads).
    Returns:
        (atoms, details with ``galaxy_energy`` of the chosen model and its file name).
    """
    home = resolve_home(galaxy_home)
    if home is None:
        raise BaselineError(f"GalaxyRefineComplex not configured (set ${ENV_HOME})")
    (workdir / INPUT_FILE).write_text(sanitised_pdb(decoy))
    cmd = command(executable(home), INPUT_FILE, n_sample=n_sample, n_output=n_output, symmetric=symmetric,
                  protocol=protocol)
    env = {**os.environ, "GALAXY_HOME": str(home)}
    if threads:
        env["NSLOTS"] = str(threads)
    log_path = workdir / "galaxy.log"
    try:
        with log_path.open("w") as log:
            proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BaselineError(f"GalaxyRefineComplex timed out after {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise BaselineError(f"GalaxyRefineComplex failed (exit {proc.returncode}): {last_line(log_path)}")
    model, energy = top_model(workdir / JOB_TITLE / "model")
    details = {"galaxy_energy": energy, "model": model.name, "command": " ".join(cmd[1:])}
    return refined_from_structure(decoy, model, "GalaxyRefineComplex"), details
