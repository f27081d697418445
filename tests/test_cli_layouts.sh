#!/usr/bin/env bash
# Parallel equals serial, end to end: every layout's PNG against the single-rank PNG of the same
# seed, on the fixture models (6 heads: Ulysses 4 needs advanced_uaa; 30 heads: U=4 and U=4 x R=2
# with uneven head splits; CFG on two rank groups against both branches on the same ranks).
# Pixels must agree within 1/255 (fp32 reduction order differs between layouts).
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
h30=$root/tests/fixtures/zimage/h30/model
[ -d "$h30" ] || { echo "SKIPPED: tests/fixtures/zimage/h30/model is missing"; exit 77; }

# check MODEL NAME "common flags" layout-flags...: each layout against the 1x1 run.
check() {
  local model=$1 name=$2 common=$3
  shift 3
  # shellcheck disable=SC2086
  "$omnigen" --model "$model" $common -o "$tmp/$name-serial.png" 2>"$tmp/err" ||
    { cat "$tmp/err"; fail "$name: serial run failed"; }
  for layout in "$@"; do
    local out=$tmp/$name-${layout// /_}.png
    # shellcheck disable=SC2086
    "$omnigen" --model "$model" $common $layout -o "$out" 2>"$tmp/err" ||
      { cat "$tmp/err"; fail "$name: layout '$layout' failed"; }
    local d
    d=$(png diff "$tmp/$name-serial.png" "$out")
    [ "$d" -le 1 ] || fail "$name: layout '$layout' differs from 1x1 by $d/255"
    echo "$name: $layout: max pixel difference $d/255"
  done
}

check "$tiny" tiny "--prompt a_lighthouse --width 80 --height 48 --steps 2 --seed 3" \
  "--ulysses-degree 2" \
  "--ring-degree 2" \
  "--ulysses-degree 2 --ring-degree 2" \
  "--ulysses-degree 4 --ulysses-mode advanced_uaa" \
  "--ulysses-degree 3 --ring-degree 2"
check "$h30" h30 "--prompt a_cat --width 64 --height 64 --steps 2 --seed 5" \
  "--ulysses-degree 4 --ulysses-mode advanced_uaa" \
  "--ulysses-degree 4 --ring-degree 2 --ulysses-mode advanced_uaa"
check "$tiny" cfg "--prompt a_storm --negative-prompt blurry --guidance-scale 4 --width 48 --height 64 --steps 2 --seed 11" \
  "--cfg-degree 2" \
  "--cfg-degree 2 --ulysses-degree 2"
# A negative prompt long enough that the two branches pad their captions to different lengths.
long_neg=$(printf 'blurry_low_quality_%.0s' $(seq 8))
check "$tiny" cfglong "--prompt a_storm --negative-prompt $long_neg --guidance-scale 3 --width 32 --height 32 --steps 2 --seed 12" \
  "--cfg-degree 2" \
  "--cfg-degree 2 --ring-degree 2"

# Strict mode refuses a degree that does not divide the heads, naming the fix, before any work.
if "$omnigen" --model "$tiny" --prompt x --width 32 --height 32 --ulysses-degree 4 \
     -o "$tmp/strict.png" 2>"$tmp/err"; then fail "strict U=4 with 6 heads was accepted"; fi
grep -q "advanced_uaa" "$tmp/err" || { cat "$tmp/err"; fail "strict refusal does not name advanced_uaa"; }
[ ! -e "$tmp/strict.png" ] || fail "a refused layout left an output file"
echo "test_cli_layouts: all checks passed"
