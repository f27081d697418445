# shellcheck shell=bash
# Sourced by the CLI shell tests (tests/test_cli_*.sh), whose $1 is the omnigen binary: strict
# mode, $omnigen, $root (the source tree, ctest's working directory), $tiny (the bundled model,
# skipped with 77 when missing), a scratch folder $tmp removed on exit, and the helpers below.
set -euo pipefail
omnigen=$1
root=$(pwd)
tiny=$root/models/zimage-tiny
[ -d "$tiny" ] || { echo "SKIPPED: models/zimage-tiny is missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# fail MESSAGE: exits 1, printing $tmp/log first when the test keeps a log there.
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && cat "$tmp/log"; exit 1; }
png() { python3 "$root/tests/cli_png.py" "$@"; }
# has_text FILE KEY=VALUE: the PNG carries that text chunk.
has_text() { png info "$1" >"$tmp/info.txt" && grep -qxF "$2" "$tmp/info.txt"; }
