#!/usr/bin/env bash
# omnigen on the bundled model: a valid PNG with its metadata, the same image for the same seed
# whatever the thread count, a different one for another seed, the default model and output.
# (test_pipeline_zimage.c checks the numbers against the reference pipeline.)
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"

gen() { "$omnigen" --model "$tiny" --width 64 --height 48 --steps 2 "$@"; }

gen --prompt "a red cube" --seed 7 -o "$tmp/a.png" 2>"$tmp/err" || { cat "$tmp/err"; fail "generation failed"; }
png info "$tmp/a.png" >"$tmp/info" || fail "a.png is not a valid PNG"
[ "$(head -1 "$tmp/info")" = "64 48" ] || fail "a.png is $(head -1 "$tmp/info"), expected 64 48"
for kv in "prompt=a red cube" "seed=7" "steps=2" "width=64" "height=48" "guidance_scale=0" \
          "parallel=ulysses 1 x ring 1 x cfg 1 (strict)" "backend=cpu" "precision=fp32"; do
  grep -qxF "$kv" "$tmp/info" || { cat "$tmp/info"; fail "a.png lacks the text chunk '$kv'"; }
done
grep -q "^model=.*zimage-tiny" "$tmp/info" || fail "a.png does not record the model"
grep -q "wrote $tmp/a.png" "$tmp/err" || { cat "$tmp/err"; fail "no 'wrote' line on stderr"; }
# Progress on a pipe: plain lines, one per step, no carriage returns.
grep -q "step 2/2" "$tmp/err" || { cat "$tmp/err"; fail "no progress line for step 2/2"; }
if grep -q $'\r' "$tmp/err"; then fail "carriage returns in progress written to a pipe"; fi
# Nothing but the PNG in the output folder (no temporary left behind).
[ "$(ls -A "$tmp" | grep -v '^err$\|^info$\|^info.txt$')" = "a.png" ] || fail "stray files: $(ls -A "$tmp")"

# The same seed gives the same pixels with another thread count; another seed changes them.
gen --prompt "a red cube" --seed 7 --threads 1 -o "$tmp/b.png" 2>/dev/null || fail "threads 1"
d=$(png diff "$tmp/a.png" "$tmp/b.png")
[ "$d" = 0 ] || fail "same seed, --threads 1: pixels differ by $d"
gen --prompt "a red cube" --seed 8 -o "$tmp/c.png" 2>/dev/null || fail "seed 8"
d=$(png diff "$tmp/a.png" "$tmp/c.png")
[ "$d" -gt 0 ] || fail "seed 8 gave the same image as seed 7"

# --precision bf16 (AMX products) stays within a few levels of the fp32 image and says so.
gen --prompt "a red cube" --seed 7 --precision bf16 -o "$tmp/h.png" 2>/dev/null || fail "bf16"
has_text "$tmp/h.png" "precision=bf16" || fail "bf16 run does not record its precision"
d=$(png diff "$tmp/a.png" "$tmp/h.png")
[ "$d" -le 8 ] || fail "--precision bf16 differs from fp32 by $d levels (limit 8)"

# A UTF-8 prompt is stored as UTF-8 text, and the default subcommand name works.
"$omnigen" generate --model "$tiny" --width 32 --height 32 --steps 1 \
  --prompt "猫 on a mat" -o "$tmp/u.png" 2>/dev/null || fail "UTF-8 prompt"
has_text "$tmp/u.png" "prompt=猫 on a mat" || fail "UTF-8 prompt not recorded"

# OMNIGEN_MODEL picks the model when --model is absent; the default output is omnigen.png.
(cd "$tmp" && OMNIGEN_MODEL="$tiny" "$omnigen" --prompt x --width 32 \
  --height 32 --steps 1 2>/dev/null) || fail "OMNIGEN_MODEL"
png info "$tmp/omnigen.png" >/dev/null || fail "no omnigen.png by default"

"$omnigen" --help >"$tmp/help" && grep -q -- "--ulysses-degree" "$tmp/help" || fail "--help"
"$omnigen" --version >"$tmp/version" && grep -q "^omnigen [0-9]" "$tmp/version" || fail "--version"
echo "test_cli_generate: all checks passed"
