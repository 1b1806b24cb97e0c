"""Wall time of what a newcomer waits for before any decoy is refined: ``egr --help``, a usage error,
and a rerun of ``egr run`` on the five bundled decoys where every decoy is resumed (``skipped``).

Each figure is the median of ``--repeats`` fresh processes. The resumed run is timed three ways: as
typed (report.html and MultiQC), ``--no-multiqc`` and ``--no-report``; and the script checks, in the
same way, that the resumed run never imports torch. The first, full run that the resumes reuse is
timed once, for scale.

    python benchmarks/startup.py [--repeats 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECOYS = str(ROOT / "tests" / "data" / "decoys" / "*.pdb.gz")
# runs the CLI in this interpreter, then says whether torch was imported: egr's own exit code is kept
PROBE = ("import sys\nfrom egr.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
         "    print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n")


def egr(*args: str, expect: int = 0) -> tuple[float, str]:
    """Seconds and stderr of one ``egr ARGS`` in a fresh process."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - began
    if done.returncode != expect:
        raise SystemExit(f"egr {' '.join(args)} exited {done.returncode}, not {expect}:\n{done.stderr[-2000:]}")
    return seconds, done.stderr


def median_seconds(repeats: int, *args: str, expect: int = 0) -> tuple[float, bool]:
    """Median seconds over ``repeats`` runs, and whether any of them imported torch."""
    runs = [egr(*args, expect=expect) for _ in range(repeats)]
    return statistics.median(s for s, _ in runs), any("torch imported: True" in err for _, err in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="Folder for the results (default: a temporary one).")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="egr_startup_"))
    outdir = str(workdir / "results")
    run = ("run", "--decoys", DECOYS, "--outdir", outdir, "--quiet")

    rows = [("egr --help", *median_seconds(args.repeats, "--help")),
            ("usage error (egr run --refiners egr,opnmm)",
             *median_seconds(args.repeats, *run, "--refiners", "egr,opnmm", expect=2))]
    first, _ = egr(*run, "--workers", "2")
    for label, extra in (("resumed run, 5 decoys", ()), ("resumed run, --no-multiqc", ("--no-multiqc",)),
                         ("resumed run, --no-report", ("--no-report",))):
        rows.append((label, *median_seconds(args.repeats, *run, *extra)))
    print(f"{'':45} {'median s':>9}  torch imported")
    for label, seconds, torch_imported in rows:
        print(f"{label:45} {seconds:9.2f}  {'yes' if torch_imported else 'no'}")
    print(f"(first, full run of the 5 decoys, --workers 2: {first:.1f} s; results in {outdir})")


if __name__ == "__main__":
    main()
