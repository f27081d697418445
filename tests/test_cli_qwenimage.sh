#!/usr/bin/env bash
# omnigen on the bundled Qwen-Image tiny model (models/qwenimage-tiny): a PNG of the size asked
# for recording Qwen-Image's defaults (50 steps, guidance 4 = true_cfg_scale) and the negative
# prompt only under true CFG; parallel layouts and --cfg-degree 2 give the serial image; bad
# requests refused with a message and no file. (test_pipeline_qwenimage.c checks the numbers
# against diffusers' QwenImagePipeline.)
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
qwen=$root/models/qwenimage-tiny
[ -d "$qwen" ] || { echo "SKIPPED: models/qwenimage-tiny is missing"; exit 77; }
gen() { "$omnigen" --model "$qwen" --width 48 --height 32 "$@"; }

# Defaults: 50 steps, guidance 4; no negative prompt means no CFG and none recorded.
gen --prompt "a fox" -o "$tmp/a.png" 2>"$tmp/log" || fail "default run"
[ "$(png info "$tmp/a.png" | head -1)" = "48 32" ] || fail "a.png is not 48x32"
has_text "$tmp/a.png" "steps=50" || fail "a.png: steps is not the default 50"
has_text "$tmp/a.png" "guidance_scale=4" || fail "a.png: guidance is not the default 4"
png info "$tmp/a.png" | grep -q "^negative_prompt=" && fail "a.png records a negative prompt without CFG"

# True CFG: recorded, and cfg 2 / ulysses 2 x ring 2 give the serial image.
gen --prompt "a fox" --negative-prompt "blurry" --steps 3 -o "$tmp/c1.png" 2>"$tmp/log" || fail "CFG run"
has_text "$tmp/c1.png" "negative_prompt=blurry" || fail "c1.png lacks the negative prompt"
gen --prompt "a fox" --negative-prompt "blurry" --steps 3 --cfg-degree 2 -o "$tmp/c2.png" 2>"$tmp/log" || fail "cfg 2 run"
gen --prompt "a fox" --negative-prompt "blurry" --steps 3 --ulysses-degree 2 --ring-degree 2 \
  -o "$tmp/c4.png" 2>"$tmp/log" || fail "2x2 run"
[ "$(png diff "$tmp/c1.png" "$tmp/c2.png")" -le 1 ] || fail "cfg 2 differs from serial"
[ "$(png diff "$tmp/c1.png" "$tmp/c4.png")" -le 1 ] || fail "2x2 differs from serial"
[ "$(png diff "$tmp/a.png" "$tmp/c1.png")" -gt 1 ] || fail "CFG and no CFG gave the same image"

# refused RC MESSAGE ARGS...: exit RC, MESSAGE on stderr, nothing left in $tmp/out.
refused() {
  local want=$1 msg=$2 rc=0
  shift 2
  mkdir -p "$tmp/out"
  gen --prompt "a fox" -o "$tmp/out/x.png" "$@" 2>"$tmp/err" || rc=$?
  [ "$rc" = "$want" ] || { cat "$tmp/err"; fail "$* exited $rc, expected $want"; }
  grep -qF "$msg" "$tmp/err" || { cat "$tmp/err"; fail "$*: no '$msg' on stderr"; }
  [ -z "$(ls -A "$tmp/out")" ] || fail "$* left $(ls -A "$tmp/out")"
}
refused 2 "width 40 is not a multiple of 16" --width 40
refused 2 "no negative prompt" --cfg-degree 2
refused 2 "this is an image model" --frames 5
refused 1 "fp32 only" --precision bf16
echo "test_cli_qwenimage: ok"
