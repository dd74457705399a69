#!/usr/bin/env bash
# The main job on the embedded default store (a filesystem store in ./demo-store):
# create the store, put data in it, verify every object, print statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${DEMO_STORE:-demo-store}"
ts() { talaria-storage --store "$STORE" "$@"; }

ts init
echo "== storing files"
for f in README.md storage.toml pyproject.toml; do
  printf '%-16s ' "$f"; ts chunk put "$f"
done
echo "== storing them again (deduplicated: same hashes, nothing written)"
for f in README.md storage.toml; do
  printf '%-16s ' "$f"; ts chunk put "$f"
done
echo "== reading one back and comparing"
h=$(ts chunk put README.md)
ts chunk get "$h" -o "$STORE.readme.out"
cmp README.md "$STORE.readme.out" && echo "README.md round-trips byte for byte" && rm -f "$STORE.readme.out"
echo "== verify"
ts verify
echo "== stats"
ts stats
