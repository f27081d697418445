#!/usr/bin/env bash
# omnigen bench attention: a hybrid UAA layout with uneven heads (30 over 4), an uneven sequence
# (131 over 8) and joint text checks against single-rank attention and prints the three lines in
# order; a refused layout exits non-zero with the validation message. $1 is the omnigen binary.
set -u
bin=$1
fail=0

out=$("$bin" bench attention --heads 30 --head-dim 16 --seq 131 --text-seq 5 --ulysses-degree 4 \
      --ring-degree 2 --ulysses-mode advanced_uaa --iters 1 --check) || { echo "FAIL: exit $?"; fail=1; }
echo "$out"
keys=$(echo "$out" | cut -d: -f1 | tr '\n' ' ')
[ "$keys" = "max_rel_err bytes_per_rank ms_per_call " ] || { echo "FAIL: lines are '$keys'"; fail=1; }
err=$(echo "$out" | sed -n 's/^max_rel_err: //p')
awk -v e="$err" 'BEGIN { exit !(e != "" && e + 0 <= 1e-5) }' || { echo "FAIL: max_rel_err '$err'"; fail=1; }
bytes=$(echo "$out" | sed -n 's/^bytes_per_rank: //p')
[ "${bytes:-0}" -gt 0 ] 2>/dev/null || { echo "FAIL: bytes_per_rank '$bytes'"; fail=1; }

# Even split, no text: bytes per rank are the DESIGN.md formula, 4(S/P)HD(U-1)/U + 2(R-1)(S/P)HD
# elements (S=64, P=4, H=8, D=16, U=2, R=2: 4096 + 4096 elements = 32768 bytes).
out=$("$bin" bench attention --heads 8 --head-dim 16 --seq 64 --ulysses-degree 2 --ring-degree 2 \
      --iters 1) || { echo "FAIL: exit $?"; fail=1; }
echo "$out" | grep -qx "bytes_per_rank: 32768" || { echo "FAIL: even split: $out"; fail=1; }

msg=$("$bin" bench attention --heads 30 --head-dim 16 --seq 64 --ulysses-degree 4 --ring-degree 2 2>&1)
rc=$?
want="ulysses_degree 4 does not divide the model's 30 attention heads (strict mode): use a degree in {1, 2, 3, 5, 6, 10, 15, 30}, or --ulysses-mode advanced_uaa to split the heads unevenly"
[ $rc -ne 0 ] || { echo "FAIL: strict 30/4 accepted"; fail=1; }
case "$msg" in *"$want"*) ;; *) echo "FAIL: message '$msg'"; fail=1 ;; esac

msg=$("$bin" bench attention --heads 8 --head-dim 16 --seq 5 --ulysses-degree 2 --ring-degree 4 \
      --ulysses-mode advanced_uaa 2>&1)
rc=$?
[ $rc -ne 0 ] && case "$msg" in *"shorter than ulysses_degree x ring_degree = 8"*) true ;; *) false ;; esac \
  || { echo "FAIL: short sequence: rc $rc '$msg'"; fail=1; }

[ $fail -eq 0 ] && echo "test_parallel_bench: all checks passed"
exit $fail
