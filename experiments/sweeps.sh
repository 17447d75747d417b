#!/usr/bin/env bash
# The sweeps of EXPERIMENTS.md, in the order they were run; each is resumable (rerun the same
# line with --resume). STORAGE defaults to a file beside this script.
set -euo pipefail
STORAGE=${STORAGE:-sqlite:///$(dirname "$0")/sweeps.db}
run() { nas-width search --storage "$STORAGE" "$@" || nas-width search --storage "$STORAGE" "$@" --resume; }
for budget in 100k 200k 400k 800k; do  # three fitted budgets, 800k held out of the fit
  run --study mnist1d-sweep --budget "mixing_flops=$budget"
done
run --study mnist1d-sweep --budget mixing_params=20k  # width against stored weights
run --study digits-sweep --budget mixing_flops=200k
