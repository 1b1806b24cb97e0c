"""Build a haddock3 wheel from its PyPI source distribution without the one download its build makes.

haddock3's ``setup.py`` (its custom ``build_ext``) compiles two small C/C++ helpers and then downloads a
prebuilt ``haddock-restraints`` binary from GitHub; without that download the build exits with an error.
The binary only generates ambiguous restraints (``haddock3-restraints``, ``haddock-restraints``), which
egr never uses: its refinement runs HADDOCK's CNS protocols on one given complex with no restraints. The
CNS binary itself ships inside the source distribution (``haddock/cns/bin/<arch>.bin``), so nothing
else is fetched.

Usage (in the Python environment that gets haddock3; it needs setuptools >= 70.1, which has
``bdist_wheel``, and a C/C++ compiler)::

    python tests/haddock/haddock3_wheel.py haddock3-2026.10.1.tar.gz --outdir wheels/

This runs the source distribution's own ``setup.py bdist_wheel`` unchanged, except that its build
step's ``download_binaries`` is replaced, for this process only, by a method that prints what was
skipped. No file of the source distribution is edited.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any


def _skip_download(self: Any) -> None:
    """Stands in for haddock3's ``CustomBuild.download_binaries``."""
    print("haddock3_wheel: skipped the haddock-restraints download (restraint generation only; "
          "egr's unrestrained refinement does not use it)", flush=True)


def build_wheel(sdist: Path, outdir: Path) -> Path:
    """Build the wheel of ``sdist`` (a haddock3 ``.tar.gz``) into ``outdir``; returns the wheel's path."""
    import setuptools

    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="haddock3-build-") as tmp:
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        (root,) = [path for path in Path(tmp).iterdir() if path.is_dir()]
        real_setup = setuptools.setup

        def patched_setup(**kwargs: Any) -> Any:
            build_ext = kwargs.get("cmdclass", {}).get("build_ext")
            if build_ext is None or not hasattr(build_ext, "download_binaries"):
                # a later haddock3 may have changed its build: fail loudly rather than build something else
                raise SystemExit("haddock3_wheel: this haddock3 setup.py has no build_ext.download_binaries")
            kwargs["cmdclass"]["build_ext"] = type("BuildExtNoDownload", (build_ext,),
                                                   {"download_binaries": _skip_download})
            return real_setup(**kwargs)

        cwd, argv = Path.cwd(), sys.argv
        setuptools.setup = patched_setup
        try:
            os.chdir(root)  # setup.py uses paths relative to its own folder
            sys.argv = ["setup.py", "--quiet", "bdist_wheel", "--dist-dir", str(outdir)]
            runpy.run_path("setup.py", run_name="__main__")
        finally:
            setuptools.setup = real_setup
            sys.argv = argv
            os.chdir(cwd)
    wheels = sorted(outdir.glob("haddock3-*.whl"), key=lambda path: path.stat().st_mtime)
    if not wheels:
        raise SystemExit(f"haddock3_wheel: no wheel written to {outdir}")
    return wheels[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="haddock3 source distribution (.tar.gz from PyPI)")
    parser.add_argument("--outdir", type=Path, default=Path("."), help="folder for the wheel")
    args = parser.parse_args()
    print(build_wheel(args.sdist, args.outdir))


if __name__ == "__main__":
    main()
