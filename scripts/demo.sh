#!/usr/bin/env bash
# The main job (README, `make demo`): the sample sequence database that ships in
# examples/sample goes into the embedded default store (a filesystem store in
# ./demo-store): its taxonomy, two releases as two versions, a byte-exact round
# trip, look-ups by accession and by refget digest, a diff, a reduction to
# references and the expansion of one, verify and stats.
# Re-running starts again from an empty store, so it always shows the same thing.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${DEMO_STORE:-demo-store}"
SAMPLE=examples/sample
ACCESSION=O78C40                            # sp|O78C40|TUFA_ECOLI in release 1
DIGEST=SQ.FSwNobkYu0TGxk7gLp52uf6Sgdko0_Bf  # refget id of its sequence; tufB codes the same protein
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
ts() { talaria-storage --store "$STORE" "$@"; }
step() { printf '\n== %s\n' "$*"; }

if [ -e "$STORE" ]; then
  [ -f "$STORE/store.json" ] || { echo "$STORE exists and is not a talaria-storage store: not deleting it" >&2; exit 1; }
  rm -rf "$STORE"
fi

step "create the store"
ts init
step "import the NCBI taxdump (taxonomy with merged and deleted ids)"
ts taxonomy import "$SAMPLE/taxdump"
step "import release 1 and release 2 as versions r1 and r2 of database 'sample' (taxa from OX=)"
ts import "$SAMPLE/release1.fasta" --database sample --version r1
ts import "$SAMPLE/release2.fasta" --database sample --version r2
step "databases and versions"
ts list
step "export sample@r1 and compare it with the file imported"
ts export --database sample@r1 -o "$OUT/release1.fasta"
cmp "$SAMPLE/release1.fasta" "$OUT/release1.fasta" && echo "round trip: byte-exact"
step "look up accession $ACCESSION, then its sequence by refget digest (tufA and tufB: one sequence, stored once)"
ts get "$ACCESSION" --database sample
ts get "$DIGEST" --database sample
step "what changed from r1 to r2"
ts diff sample@r1 sample@r2
step "reduce sample@r2 to references at 70 % identity (as CD-HIT would), export them, expand one"
ts reduce --database sample@r2 --profile 70 --identity 0.7
ts export --database sample --profile 70 --references -o "$OUT/references.fasta"
echo "references: $(grep -c '>' "$OUT/references.fasta") of $(grep -c '>' "$SAMPLE/release2.fasta") records"
ts reduce expand --database sample --profile 70 "$ACCESSION"
step "verify every object (and decode every delta of the profile)"
ts verify
step "statistics of database 'sample'"
ts stats --database sample
