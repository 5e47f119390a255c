#!/usr/bin/env bash
# Derives the Inner Mongolia (code prefix 15) subset of the NBS 2023 division codes shipped here
# from the national files in ../shared/reference/china-division-2023 (or the directory given).
# Each output keeps the national file's header and every row whose code starts with 15.
set -euo pipefail
src=${1:-$(dirname "$0")/../../../shared/reference/china-division-2023}
out=$(dirname "$0")
for f in provinces cities areas streets villages; do
  zcat "$src/$f.csv.gz" | awk -F, 'NR == 1 || $1 ~ /^15/' | gzip -n -9 > "$out/$f.csv.gz"
done
