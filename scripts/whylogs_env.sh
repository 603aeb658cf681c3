#!/usr/bin/env bash
# Create .venv-whylogs: spark_explore beside whylogs, for scripts/bench.py's whylogs job.
# whylogs 1.6.4 needs NumPy 1 (it uses np.unicode_), so this environment pins NumPy 1.26
# and a pyarrow built for it; the project's own .venv stays on NumPy 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
pins=("numpy==1.26.4" "pyarrow==21.*")
if [ ! -x .venv-whylogs/bin/python ]; then
  "$PYTHON" -m venv .venv-whylogs
fi
.venv-whylogs/bin/python -m pip install --quiet --upgrade pip
.venv-whylogs/bin/python -m pip install --quiet "${pins[@]}" "whylogs==1.6.4"
.venv-whylogs/bin/python -m pip install --quiet -e . "${pins[@]}"
