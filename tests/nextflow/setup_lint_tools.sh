#!/usr/bin/env bash
# Installs the static checkers tests/test_nextflow.py uses, each apart from the project's venv
# because they pull conflicting packages:
#   - Groovy (Debian package; needs Java, which it pulls in) for the syntax check;
#   - reftrace (PyPI) in its own virtualenv under ${EGR_NF_TOOLS:-~/.cache/egr-nf}/reftrace-venv.
# Safe to run again: does nothing when both are there. Used by .ci/run.
set -euo pipefail

tools_dir="${EGR_NF_TOOLS:-$HOME/.cache/egr-nf}"
reftrace_version="0.6.0"

if ! command -v groovy >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groovy >/dev/null
    else
        echo "setup_lint_tools: groovy missing and not root; the Groovy checks will be skipped" >&2
    fi
fi

venv="$tools_dir/reftrace-venv"
if [ ! -x "$venv/bin/reftrace" ]; then
    mkdir -p "$tools_dir"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "reftrace==$reftrace_version"
fi
"$venv/bin/reftrace" --version
command -v groovy >/dev/null 2>&1 && echo "groovy: $(command -v groovy)"
