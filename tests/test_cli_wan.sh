#!/usr/bin/env bash
# omnigen on the bundled Wan2.1 tiny model (models/wan-tiny): an MP4 with the frames, size and
# frame rate asked for (read back by tests/cli_mp4.py from the MP4 boxes), the video defaults
# (omnigen.mp4, 16 fps), a 1-frame PNG, and bad requests refused with exit 2 and no file.
# (test_pipeline_wan.c checks the numbers against diffusers' WanPipeline.)
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
wan=$root/models/wan-tiny
[ -d "$wan" ] || { echo "SKIPPED: models/wan-tiny is missing"; exit 77; }
mp4() { python3 "$root/tests/cli_mp4.py" "$@"; }
gen() { "$omnigen" --model "$wan" --width 48 --height 32 --steps 2 "$@"; }
# refused MESSAGE ARGS...: exit 2, MESSAGE on stderr, nothing left in $tmp/out.
refused() {
  local msg=$1 rc=0
  shift
  mkdir -p "$tmp/out"
  gen --prompt "a fox" "$@" 2>"$tmp/err" || rc=$?
  [ "$rc" = 2 ] || { cat "$tmp/err"; fail "$* exited $rc, expected 2"; }
  grep -qF "$msg" "$tmp/err" || { cat "$tmp/err"; fail "$*: no '$msg' on stderr"; }
  [ -z "$(ls -A "$tmp/out")" ] || fail "$* left $(ls -A "$tmp/out")"
}

refused "frames 6 is not 1 + 4k" --frames 6 -o "$tmp/out/a.mp4"
refused "try 5 or 9" --frames 8 -o "$tmp/out/a.mp4"
refused "expected a positive integer" --frames 0 -o "$tmp/out/a.mp4"
refused "a PNG holds one frame" --frames 5 -o "$tmp/out/a.png"
refused "writes .mp4 files" --frames 5 -o "$tmp/out/a.gif"
refused "width 40 is not a multiple of 16" --frames 5 --width 40 -o "$tmp/out/a.mp4"
refused "expected a frame rate" --frames 5 --fps 0 -o "$tmp/out/a.mp4"
# An image model takes no --frames above 1.
rc=0
"$omnigen" --model "$tiny" --prompt "a fox" --width 32 --height 32 --steps 1 --frames 5 \
  -o "$tmp/out/z.png" 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -qF "this is an image model" "$tmp/err" || { cat "$tmp/err"; fail "Z-Image --frames 5 exited $rc"; }
[ -z "$(ls -A "$tmp/out")" ] || fail "Z-Image --frames 5 left $(ls -A "$tmp/out")"

# One frame to a PNG.
gen --prompt "a fox" --frames 1 -o "$tmp/one.png" 2>"$tmp/err" || { cat "$tmp/err"; fail "1-frame PNG"; }
png info "$tmp/one.png" >"$tmp/info" || fail "one.png is not a valid PNG"
[ "$(head -1 "$tmp/info")" = "48 32" ] || fail "one.png is $(head -1 "$tmp/info"), expected 48 32"
grep -qxF "frames=1" "$tmp/info" || fail "one.png does not record its frame count"

# The MP4: frames, size, fps as asked; only the file in its folder; a 'wrote' line.
mkdir -p "$tmp/v"
rc=0
gen --prompt "a red fox in the snow" --frames 9 --fps 8 --seed 3 -o "$tmp/v/a.mp4" 2>"$tmp/err" || rc=$?
if [ "$rc" != 0 ] && grep -q "without FFmpeg" "$tmp/err"; then
  echo "SKIPPED: built without FFmpeg (the PNG and refusal checks passed)"
  exit 77
fi
[ "$rc" = 0 ] || { cat "$tmp/err"; fail "MP4 generation exited $rc"; }
[ "$(mp4 info "$tmp/v/a.mp4")" = "48 32 9 8" ] || fail "a.mp4 is '$(mp4 info "$tmp/v/a.mp4")', expected '48 32 9 8'"
[ "$(ls -A "$tmp/v")" = "a.mp4" ] || fail "stray files: $(ls -A "$tmp/v")"
grep -q "wrote $tmp/v/a.mp4 (9 frames 48x32" "$tmp/err" || { cat "$tmp/err"; fail "no 'wrote' line"; }

# Defaults of a video model: omnigen.mp4 in the working folder, 16 fps; cfg 2 runs.
(cd "$tmp/v" && gen --prompt "waves" --frames 5 --cfg-degree 2 2>"$tmp/err") || { cat "$tmp/err"; fail "default output"; }
[ "$(mp4 info "$tmp/v/omnigen.mp4")" = "48 32 5 16" ] || fail "omnigen.mp4 is '$(mp4 info "$tmp/v/omnigen.mp4")', expected '48 32 5 16'"
echo "test_cli_wan: ok"
