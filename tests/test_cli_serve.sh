#!/usr/bin/env bash
# omnigen serve: POST /v1/images/generations answers a PNG equal to the CLI's for the same
# request, and 4xx with a JSON message for bad bodies, paths and methods. Skipped (77) when the
# build has no HTTP server; such a build must refuse `serve` with a reason instead.
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"
if ! "$omnigen" --version | grep -q server; then
  rc=0; "$omnigen" serve >/dev/null 2>"$tmp/log" || rc=$?
  [ "$rc" -eq 2 ] && grep -q "built without the HTTP server" "$tmp/log" || fail "serve without a server: exit $rc"
  echo "SKIPPED: built without the HTTP server"; exit 77
fi

"$omnigen" serve --model "$tiny" --port 0 --width 32 --height 32 --steps 2 --seed 3 \
  --ulysses-degree 2 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$tmp/log" && break
  kill -0 $pid 2>/dev/null || fail "the server exited"
  sleep 0.1
done
url=$(grep -o "http://[^ ]*" "$tmp/log" | head -1)
[ -n "$url" ] || fail "no 'listening on' line"
base=${url%/v1/images/generations}

# post PATH METHOD BODY OUT: prints the status code; the response body goes to OUT.
post() {
  python3 - "$base$1" "$2" "$3" "$4" <<'PY'
import sys, urllib.request, urllib.error
url, method, body, out = sys.argv[1:5]
req = urllib.request.Request(url, data=body.encode() if method == "POST" else None, method=method)
try:
    with urllib.request.urlopen(req, timeout=120) as r:
        code, data = r.status, r.read()
except urllib.error.HTTPError as e:
    code, data = e.code, e.read()
open(out, "wb").write(data)
print(code)
PY
}
ep=/v1/images/generations
[ "$(post $ep POST '{"prompt": "a red cube", "width": 48}' "$tmp/a.png")" = 200 ] || fail "good request: $(cat "$tmp/a.png")"
"$omnigen" --model "$tiny" --prompt "a red cube" --width 48 --height 32 --steps 2 --seed 3 \
  --ulysses-degree 2 -o "$tmp/cli.png" 2>/dev/null || fail "CLI run"
d=$(png diff "$tmp/a.png" "$tmp/cli.png") || fail "the reply is not a valid PNG"
[ "$d" = 0 ] || fail "the server's PNG differs from the CLI's by $d"

check() { # check PATH METHOD BODY CODE MESSAGE
  local code
  code=$(post "$1" "$2" "$3" "$tmp/r")
  [ "$code" = "$4" ] || fail "$2 $1 '$3': status $code, expected $4: $(cat "$tmp/r")"
  grep -qF -- "$5" "$tmp/r" || fail "$2 $1 '$3': reply '$(cat "$tmp/r")' lacks '$5'"
}
check $ep POST 'not json' 400 "expected a JSON object"
check $ep POST '{"prompt": "x"' 400 "invalid JSON"
check $ep POST '{"seed": 1}' 400 "no \\\"prompt\\\""
check $ep POST '{"prompt": "x", "steps": "many"}' 400 "must be an integer"
check $ep POST '{"prompt": "x", "width": 40}' 400 "width 40 is not a multiple of 16"
check $ep POST '{"prompt": "x", "output": "/etc/x.png"}' 400 "not accepted over HTTP"
check $ep POST '{"prompt": "x", "color": "red"}' 400 "unknown key"
check $ep POST "{\"prompt\": \"$(head -c 70000 /dev/zero | tr '\0' a)\"}" 413 "over 65536 bytes"
check $ep GET '' 405 "use POST"
check /v1/models GET '' 404 "not found"
# Still serving after the errors.
[ "$(post $ep POST '{"prompt": "again", "seed": 4}' "$tmp/b.png")" = 200 ] || fail "request after errors"
kill -TERM $pid
wait $pid || fail "the server did not exit cleanly on SIGTERM"
grep -q "stopping" "$tmp/log" || fail "no stop line"
echo "test_cli_serve: all checks passed"
