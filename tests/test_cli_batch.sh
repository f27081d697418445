#!/usr/bin/env bash
# --prompt-file: plain and JSON lines, skipped lines, outputs named <stem>-<line>.png, one bad line
# reported with its line number while the others are still written, and a non-zero exit.
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
# size FILE: "W H" of a valid PNG.
size() { png info "$1" >"$tmp/info.txt" && head -1 "$tmp/info.txt"; }

cat >"$tmp/prompts.txt" <<'PROMPTS'
# three good prompts and two bad lines
a red cube

{"prompt": "a blue sphere", "seed": 9, "width": 48, "output": "SPHERE"}
{"prompt": "broken", "seed": "nine"}
{"prompt": "odd size", "width": 40}
{"prompt": "a green cone", "steps": 1}
PROMPTS
sed -i "s|SPHERE|$tmp/sphere.png|" "$tmp/prompts.txt"
rc=0
"$omnigen" --model "$tiny" --prompt-file "$tmp/prompts.txt" --width 32 --height 32 --steps 2 \
  --seed 4 -o "$tmp/batch.png" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$tmp/err"; fail "exit $rc, expected 1"; }
grep -qF "prompts.txt:5: \"seed\" must be an integer" "$tmp/err" || { cat "$tmp/err"; fail "line 5 not reported"; }
grep -qF "prompts.txt:6: width 40 is not a multiple of 16" "$tmp/err" || { cat "$tmp/err"; fail "line 6 not reported"; }
grep -qF "2 of 5 prompts failed (line 5, 6 of" "$tmp/err" || { cat "$tmp/err"; fail "no summary"; }
[ "$(size "$tmp/batch-2.png")" = "32 32" ] || fail "line 2 output"
[ "$(size "$tmp/sphere.png")" = "48 32" ] || fail "line 4 output"
has_text "$tmp/sphere.png" "seed=9" || fail "line 4 seed not recorded"
has_text "$tmp/batch-7.png" "steps=1" || fail "line 7 steps"
[ ! -e "$tmp/batch-5.png" ] && [ ! -e "$tmp/batch-6.png" ] || fail "a bad line wrote a file"
[ "$(ls "$tmp" | grep -c '\.png$')" -eq 3 ] || fail "unexpected files: $(ls "$tmp")"

# A batch line gives the same image as the same request on the command line.
"$omnigen" --model "$tiny" --prompt "a red cube" --width 32 --height 32 --steps 2 --seed 4 \
  -o "$tmp/single.png" 2>/dev/null || fail "single run"
d=$(png diff "$tmp/single.png" "$tmp/batch-2.png")
[ "$d" = 0 ] || fail "batch line 2 differs from the single run by $d"

# All good: exit 0. Missing or empty files are usage errors.
printf 'one\n{"prompt": "two"}\n' >"$tmp/good.txt"
"$omnigen" --model "$tiny" --prompt-file "$tmp/good.txt" --width 32 --height 32 --steps 1 \
  -o "$tmp/good.png" 2>"$tmp/err" || { cat "$tmp/err"; fail "good batch failed"; }
[ -e "$tmp/good-1.png" ] && [ -e "$tmp/good-2.png" ] || fail "good batch outputs"
rc=0; "$omnigen" --model "$tiny" --prompt-file "$tmp/none.txt" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "none.txt" "$tmp/err" || fail "missing prompt file: exit $rc"
printf '# nothing\n\n' >"$tmp/empty.txt"
rc=0; "$omnigen" --model "$tiny" --prompt-file "$tmp/empty.txt" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "no prompts" "$tmp/err" || fail "empty prompt file: exit $rc"
echo "test_cli_batch: all checks passed"
