#!/usr/bin/env bash
# Derives the Inner Mongolia (code prefix 15) subset of the NBS 2023 division codes from the
# national files in ../regions (or the directory given). Each output keeps the national file's
# header and every row whose code starts with 15; gzip -n, so the bytes are the same every time.
set -euo pipefail
src=${1:-$(dirname "$0")/../regions}
out=$(dirname "$0")
for f in provinces cities areas streets villages; do
  zcat "$src/$f.csv.gz" | awk -F, 'NR == 1 || $1 ~ /^15/' | gzip -n -9 > "$out/$f.csv.gz"
done
