"""Size and load time of report.html for a large run (target: < 20 MB, opens in a browser in seconds).

Builds a synthetic results folder of ``--decoys`` decoys (default 1,000: 100 targets × 10 decoys)
from the five bundled test complexes (tests/data/decoys, 126–309 residues): each decoy gets the real
structure as ``<id>_refined.pdb`` (so interface residues are computed as in a real run), a smooth
random per-residue pLDDT and true LDDT, DockQ for the decoy and four refiners (Galaxy skipped on some
decoys), and 3 % of the decoys fail. Then it times ``egr.report.build_report`` and loads the page in
headless Chromium over the DevTools protocol (``--remote-debugging-pipe``: no port, no extra
package), reporting navigation → load event, the first frames after load (visible sparklines drawn),
and opening one decoy's per-residue track.

    python benchmarks/bench_report.py [--decoys 1000] [--workdir DIR] [--chromium /usr/bin/chromium] [--multiqc]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egr.multiqc_content import run_multiqc  # noqa: E402
from egr.report import build_report  # noqa: E402
from egr.structure import format_pdb, read_decoy  # noqa: E402

METHODS = ("egr", "openmm", "modeller", "galaxy")


def smooth(rng: np.random.Generator, n: int, level: float, spread: float) -> np.ndarray:
    """A residue profile in [0, 1] that varies like a real one (correlated along the chain)."""
    noise = np.convolve(rng.normal(0, 1, n + 8), np.ones(9) / 3.0, mode="valid")
    return np.clip(level + spread * noise, 0.0, 1.0)


def make_run(folder: Path, n_decoys: int, seed: int = 0) -> None:
    """Write a synthetic results folder laid out as ``egr run`` writes it (see the module docstring)."""
    rng = np.random.default_rng(seed)
    templates = []
    for path in sorted((ROOT / "tests" / "data" / "decoys").glob("*.pdb.gz")):
        complex_, _ = read_decoy(path)
        starts = complex_.residue_starts
        residues = pd.DataFrame(
            {
                "chain": complex_.chain_ids[starts],
                "resseq": complex_.res_seq[starts],
                "icode": complex_.ins_codes[starts],
                "resname": complex_.res_names[starts],
            }
        )
        templates.append((format_pdb(complex_), residues, complex_))
    rows = []
    for i in range(n_decoys):
        target = f"T{i // 10:03d}"
        decoy = f"{target}_model{i % 10:02d}"
        pdb_text, residues, complex_ = templates[i % len(templates)]
        row = {"id": decoy, "input": f"decoys/{decoy}.pdb", "target": target}
        if rng.random() < 0.03:
            row.update(status="failed", reason=f"{decoy}.pdb: no amino-acid residues after removing ligands and water")
            (folder / decoy).mkdir(parents=True)
            rows.append(row)
            continue
        folder_decoy = folder / decoy
        folder_decoy.mkdir(parents=True)
        (folder_decoy / f"{decoy}_refined.pdb").write_text(pdb_text)
        plddt = smooth(rng, len(residues), rng.uniform(0.4, 0.85), 0.08)
        true = smooth(rng, len(residues), rng.uniform(0.5, 0.95), 0.1)
        table = residues.assign(plddt=np.round(plddt, 4))
        table.to_csv(folder_decoy / f"{decoy}_plddt.csv", index=False)
        table.assign(true_lddt=np.round(true, 4)).to_csv(folder_decoy / f"{decoy}_lddt.csv", index=False)
        dockq = float(np.clip(rng.beta(0.8, 1.5), 0.005, 0.98))
        row.update(
            status="ok",
            reason="",
            mean_plddt=round(float(plddt.mean()), 4),
            interface_plddt=round(float(plddt.mean() + rng.normal(0, 0.03)), 4),
            n_chains=2,
            n_residues=len(residues),
            n_atoms=complex_.n_atoms,
            rmsd_to_input=round(rng.uniform(0.1, 1.5), 4),
            surface_backend="A:msms,B:msms",
            warnings="",
            seconds_total=round(rng.uniform(1, 4), 3),
            dockq_decoy=round(dockq, 4),
            fnat_decoy=round(dockq * 0.9, 4),
            irmsd_decoy=round(8 * (1 - dockq), 4),
            lrmsd_decoy=round(20 * (1 - dockq), 4),
            lddt_pearson=round(rng.uniform(0.2, 0.8), 4),
            lddt_spearman=round(rng.uniform(0.2, 0.8), 4),
            lddt_mae=round(rng.uniform(0.05, 0.2), 4),
            true_lddt_mean=round(float(true.mean()), 4),
        )
        for method, spread in zip(METHODS, (0.01, 0.02, 0.05, 0.03)):
            if method == "galaxy" and rng.random() < 0.2:
                row.update(status_galaxy="skipped", reason_galaxy="GalaxyRefineComplex not found (set GALAXY_HOME)")
                continue
            delta = float(np.clip(rng.normal(0.002, spread), -dockq, 1 - dockq))
            row.update(
                {
                    f"dockq_{method}": round(dockq + delta, 4),
                    f"delta_dockq_{method}": round(delta, 4),
                    f"delta_irmsd_{method}": round(-delta * 8, 4),
                    f"delta_lrmsd_{method}": round(-delta * 20, 4),
                    f"delta_fnat_{method}": round(delta * 0.9, 4),
                }
            )
            if method != "egr":
                row.update({f"status_{method}": "ok", f"seconds_{method}": round(rng.uniform(5, 60), 2)})
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "summary.tsv", sep="\t", index=False)
    (folder / "pipeline_info").mkdir()
    (folder / "pipeline_info" / "run_info.json").write_text(
        json.dumps(
            {
                "egr_version": "0.1.0",
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "n_decoys": n_decoys,
                "options": {"device": "cpu", "refiners": list(METHODS)},
                "model": {"description": "synthetic benchmark run", "trained": True, "sha256": "0" * 64},
                "versions": {"python": sys.version.split()[0]},
            }
        )
    )


class DevTools:
    """Minimal Chrome DevTools protocol client over ``--remote-debugging-pipe`` (fds 3 and 4 of Chromium)."""

    def __init__(self, chromium: str, profile: Path, window: str = "1400,1000"):
        to_chrome_r, self._write = os.pipe()
        self._read, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child, before exec: the protocol's fixed descriptors
            # duplicate first: a pipe may already sit on 3 or 4, and dup2 onto itself would keep close-on-exec
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={window}",
                "about:blank",
            ],
            preexec_fn=wire,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer, self._next_id, self.events = b"", 0, []

    def _messages(self, timeout: float) -> list[dict]:
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            raise TimeoutError("no answer from Chromium")
        self._buffer += os.read(self._read, 1 << 20)
        *complete, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in complete]

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 120) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._messages(max(deadline - time.monotonic(), 0.01)):
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
                self.events.append(reply)

    def wait_event(self, name: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == name:
                    return self.events.pop(i)
            self.events += self._messages(max(deadline - time.monotonic(), 0.01))

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):  # the browser may already be gone
            self.call("Browser.close", timeout=10)
        self.process.wait(timeout=30)
        os.close(self._read)
        os.close(self._write)


FRAMES_AFTER_LOAD = (
    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(JSON.stringify({"
    "nav: performance.getEntriesByType('navigation')[0].toJSON(), frames: performance.now(),"
    "sparks: document.querySelectorAll('canvas.spark[data-drawn]').length})))))"
)
OPEN_TRACK = (
    "(() => { const rows = document.querySelectorAll('tr.main'); if (!rows.length) return -1;"
    "const t0 = performance.now(); rows[Math.min(7, rows.length - 1)].click(); return performance.now() - t0; })()"
)


def browser_timings(page: Path, chromium: str, repeats: int) -> dict:
    """Median over ``repeats`` navigations: load event, first frames after load, opening one track."""
    with tempfile.TemporaryDirectory() as profile:
        tools = DevTools(chromium, Path(profile))
        try:
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            tools.call("Page.enable", session=session)
            samples = []
            for _ in range(repeats):
                began = time.perf_counter()
                tools.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
                tools.wait_event("Page.loadEventFired")
                wall = time.perf_counter() - began
                result = tools.call(
                    "Runtime.evaluate",
                    {"expression": FRAMES_AFTER_LOAD, "awaitPromise": True, "returnByValue": True},
                    session=session,
                )
                page_times = json.loads(result["result"]["value"])
                track = tools.call(
                    "Runtime.evaluate", {"expression": OPEN_TRACK, "returnByValue": True}, session=session
                )["result"]["value"]
                samples.append(
                    {
                        "wall_load_s": wall,
                        "load_event_ms": page_times["nav"]["loadEventEnd"],
                        "dom_content_loaded_ms": page_times["nav"]["domContentLoadedEventEnd"],
                        "first_frames_ms": page_times["frames"],
                        "sparklines_drawn": page_times["sparks"],
                        "open_track_ms": track,
                    }
                )
        finally:
            tools.close()
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoys", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, help="Keep the synthetic run and report here (default: a temp folder).")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--multiqc", action="store_true", help="Also time the MultiQC report (needs multiqc).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        run_dir, out_dir = work / "results", work / "report"
        shutil.rmtree(run_dir, ignore_errors=True)
        began = time.perf_counter()
        make_run(run_dir, args.decoys)
        print(f"synthetic run: {args.decoys} decoys in {time.perf_counter() - began:.1f} s -> {run_dir}")
        began = time.perf_counter()
        outputs = build_report(run_dir, out_dir, multiqc=False)
        print(f"build_report (MultiQC files + report.html): {time.perf_counter() - began:.1f} s")
        size = outputs.html.stat().st_size
        print(f"report.html: {size / 1e6:.2f} MB ({size:,} bytes)")
        if args.multiqc:
            began = time.perf_counter()
            report, note = run_multiqc(list(outputs.multiqc_files), out_dir)
            print(f"MultiQC: {time.perf_counter() - began:.1f} s ({note})")
            if report:
                print(f"multiqc_report.html: {report.stat().st_size / 1e6:.2f} MB")
        if not Path(args.chromium).exists():
            print(f"chromium not found at {args.chromium}: no load timing")
            return
        # the same measurement on an empty page: what the browser costs by itself on this machine, now
        blank = work / "blank.html"
        blank.write_text("<!DOCTYPE html><title>blank</title><p>blank</p>")
        baseline = browser_timings(blank, args.chromium, args.repeats)
        timings = browser_timings(outputs.html, args.chromium, args.repeats)
        print(f"Chromium headless, median of {args.repeats} loads (report | empty page):")
        for key, value in timings.items():
            print(f"  {key}: {value:.3f} | {baseline[key]:.3f}" if isinstance(value, float)
                  else f"  {key}: {value} | {baseline[key]}")

if __name__ == "__main__":
    main()
