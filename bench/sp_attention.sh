#!/usr/bin/env bash
# Sweeps sequence-parallel layouts with `omnigen bench attention` (in-process ranks on this
# machine's CPU cores) and prints one table row per layout: error against single-rank attention,
# bytes sent per rank per call, and milliseconds per call.
#   bench/sp_attention.sh [OMNIGEN] [HEADS] [HEAD_DIM] [SEQ] [TEXT]
# Defaults: build/omnigen 30 64 4099 0 (the acceptance shape). Figures in
# docs/parallelism.md come from this script; the machine is printed with them.
set -eu
bin=${1:-build/omnigen}
H=${2:-30}
D=${3:-64}
S=${4:-4099}
T=${5:-0}
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# heads $H, head_dim $D, seq $S, text $T"
printf '%-4s %-4s %-13s %-12s %-15s %s\n' U R mode max_rel_err bytes_per_rank ms_per_call
for layout in "1 1" "2 1" "1 2" "4 1" "2 2" "1 4" "8 1" "4 2" "2 4"; do
  set -- $layout
  for mode in strict advanced_uaa; do
    out=$("$bin" bench attention --heads "$H" --head-dim "$D" --seq "$S" --text-seq "$T" \
          --ulysses-degree "$1" --ring-degree "$2" --ulysses-mode "$mode" --check 2>&1) || {
      # A refused layout (e.g. strict with heads % U != 0) prints its reason and moves on.
      [ "$mode" = strict ] && [ $(( H % $1 )) -ne 0 ] && continue
      echo "$1 $2 $mode: $out" >&2
      exit 1
    }
    err=$(echo "$out" | sed -n 's/^max_rel_err: //p')
    bytes=$(echo "$out" | sed -n 's/^bytes_per_rank: //p')
    ms=$(echo "$out" | sed -n 's/^ms_per_call: //p')
    printf '%-4s %-4s %-13s %-12s %-15s %s\n' "$1" "$2" "$mode" "$err" "$bytes" "$ms"
    # Strict and UAA run the same code when the heads divide: measure once.
    [ $(( H % $1 )) -eq 0 ] && break
  done
done
