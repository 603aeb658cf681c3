#!/usr/bin/env bash
# Create .venv (once) and install spark_explore with its test extras into it.
# Needs Python >= 3.10 and Java 17 on the PATH; re-running is cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "spark-explore needs Python >= 3.10 (found: $("$PYTHON" --version 2>&1))" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
if ! command -v java >/dev/null 2>&1; then
  echo "spark-explore needs Java 17 (java not found on PATH); e.g. apt-get install openjdk-17-jre-headless" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
