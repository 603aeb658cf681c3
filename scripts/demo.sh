#!/usr/bin/env bash
# Set up, then profile the bundled Palmer penguins table into out/penguins/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
exec .venv/bin/spark-explore profile --table data/penguins.parquet --output out/penguins \
  --overwrite "$@"
