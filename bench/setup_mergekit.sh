#!/usr/bin/env bash
# Install mergekit 0.1.5 in its own virtual environment, outside the project's, for the mergekit-equality test
# (tests/growth/test_merge_mergekit.py) and bench/merge.py. mergekit pins its own transformers/pydantic versions, so
# it cannot share .venv. torch is pinned first so pip takes the local CPU wheel instead of pulling CUDA builds.
#
#   bash bench/setup_mergekit.sh [VENV]     # default VENV: $GROWBENCH_MERGEKIT_VENV or ./.mergekit-venv
#   a VENV given as an argument: export GROWBENCH_MERGEKIT=VENV/bin/mergekit-yaml for the test and the bench
set -euo pipefail
venv="${1:-${GROWBENCH_MERGEKIT_VENV:-./.mergekit-venv}}"
if [ -x "$venv/bin/mergekit-yaml" ] && "$venv/bin/python" -c "import mergekit" 2>/dev/null; then
    echo "mergekit already installed in $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q mergekit==0.1.5
echo "mergekit installed in $venv"
