#!/usr/bin/env bash
# Installs HADDOCK3 (with its bundled CNS) for `egr baseline haddock` and tests/test_haddock.py, in its
# own virtualenv: every haddock3 release on PyPI requires numpy 2, and DockQ 2.1.3 (an egr dependency)
# requires numpy < 2, so the two cannot share one environment. egr runs HADDOCK3 as a program
# (`haddock3 run.cfg`), so it only needs the executable: $EGR_HADDOCK3 points at it.
#
# Where GitHub is reachable, `pip install haddock3==VERSION` in that virtualenv is all it takes. Here
# (and on any machine that reaches PyPI only) the build's download of the haddock-restraints binary
# from GitHub fails, so the wheel is built from PyPI's source distribution by haddock3_wheel.py, which
# runs haddock3's own setup.py with that one download skipped (restraint generation only; egr does not
# use it).
#
# Installs into ${EGR_NF_TOOLS:-~/.cache/egr-nf}/haddock3-venv. Safe to run again: does nothing when
# that haddock3 is there and its CNS runs. Prints the haddock3 executable's path last. Used by .ci/run.
set -euo pipefail

version="${HADDOCK3_VERSION:-2026.10.1}"
tools_dir="${EGR_NF_TOOLS:-$HOME/.cache/egr-nf}"
venv="$tools_dir/haddock3-venv"
here="$(cd "$(dirname "$0")" && pwd)"

cns_runs() {
    # CNS reads commands from stdin; `stop` ends it at once with status 0 when the binary works here.
    local cns
    cns="$("$venv/bin/python" -c 'from haddock.libs.libutil import get_cns_executable; print(get_cns_executable()[0])' 2>/dev/null)" \
        && echo stop | "$cns" >/dev/null 2>&1
}

if [ -x "$venv/bin/haddock3" ] \
    && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("haddock3"))' 2>/dev/null)" = "$version" ] \
    && cns_runs; then
    echo "$venv/bin/haddock3"
    exit 0
fi

mkdir -p "$tools_dir"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip "setuptools>=70.1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# the source distribution as PyPI serves it (pip only fetches it here, it builds nothing)
"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --dest "$work" "haddock3==$version"
"$venv/bin/python" "$here/haddock3_wheel.py" "$work/haddock3-$version.tar.gz" --outdir "$work" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "$work"/haddock3-"$version"-*.whl
cns_runs || { echo "setup_haddock3: the bundled CNS binary does not run on this machine" >&2; exit 1; }
echo "$venv/bin/haddock3"
