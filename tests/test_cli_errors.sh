#!/usr/bin/env bash
# Bad input gets a clear message naming the problem, a non-zero exit, and no output file (nor a
# temporary one): bad flags and values, missing and corrupted model folders, bad sizes, layouts
# and output folders, and a CUDA request this machine or build cannot serve.
# shellcheck source=tests/cli_common.sh
. "$(dirname "$0")/cli_common.sh"

# expect CODE "MESSAGE" ARGS...: exits with CODE (any non-zero when CODE is "x"), prints MESSAGE
# on stderr, and writes nothing into the output folder.
expect() {
  local want=$1 msg=$2
  shift 2
  rm -rf "$tmp/out" && mkdir "$tmp/out"
  local rc=0
  "$omnigen" "$@" >/dev/null 2>"$tmp/err" || rc=$?
  if [ "$want" = x ]; then [ "$rc" -ne 0 ] || fail "'$*' succeeded"
  else [ "$rc" -eq "$want" ] || { cat "$tmp/err"; fail "'$*' exited $rc, expected $want"; }; fi
  grep -qF -- "$msg" "$tmp/err" || { cat "$tmp/err"; fail "'$*': no '$msg' in the message"; }
  [ -z "$(ls -A "$tmp/out")" ] || fail "'$*' left $(ls -A "$tmp/out")"
}
ok=(--model "$tiny" --prompt "x" --width 32 --height 32 --steps 1 -o "$tmp/out/x.png")

# Flags and values.
expect 2 "--steps: expected a positive integer, got 'abc'" "${ok[@]}" --steps abc
expect 2 "--steps: expected a positive integer, got '0'" "${ok[@]}" --steps 0
expect 2 "--width: expected a positive integer, got '-64'" "${ok[@]}" --width -64
expect 2 "--seed: expected an integer from 0" "${ok[@]}" --seed 1.5
expect 2 "--guidance-scale: expected a number >= 0, got 'lots'" "${ok[@]}" --guidance-scale lots
expect 2 "--ulysses-mode: expected strict or advanced_uaa, got 'loose'" "${ok[@]}" --ulysses-mode loose
expect 2 "--backend: expected cpu, cuda or auto, got 'tpu'" "${ok[@]}" --backend tpu
expect 2 "--precision: expected fp32 or bf16, got 'fp16'" "${ok[@]}" --precision fp16
expect 2 "--threads: expected a thread count" "${ok[@]}" --threads many
expect 2 "unknown flag '--sampler'" "${ok[@]}" --sampler euler
expect 2 "unknown flag '--stpes'" "${ok[@]}" --stpes=4
expect 2 "--steps: missing value" "${ok[@]}" --steps
expect 2 "--prompt: missing value" --model "$tiny" --prompt --steps 1 -o "$tmp/out/x.png"
expect 2 "unexpected argument 'cat'" "${ok[@]}" cat
expect 2 "--help takes no value" "${ok[@]}" --help=yes
expect 2 "give --prompt TEXT or --prompt-file FILE" --model "$tiny" -o "$tmp/out/x.png"
expect 2 "--devices: only used with --backend cuda" "${ok[@]}" --backend cpu --devices 0

# Sizes, steps and layouts, refused before any weight is read.
expect 2 "width 100 is not a multiple of 16" "${ok[@]}" --width 100
expect 2 "try 96 or 112" "${ok[@]}" --width 100
expect 2 "height 8 is not a multiple of 16" "${ok[@]}" --height 8
expect 2 "advanced_uaa" "${ok[@]}" --ulysses-degree 4
expect 2 "cfg_degree 2" "${ok[@]}" --cfg-degree 2
expect 2 "cfg_degree" "${ok[@]}" --cfg-degree 3 --guidance-scale 2
expect 2 "$tmp/out/no/such/dir" "${ok[@]}" -o "$tmp/out/no/such/dir/x.png"

# Model folders: missing, not a Z-Image pipeline, truncated weights, wrong-shape weights.
expect 1 "$tmp/nomodel" --model "$tmp/nomodel" --prompt x -o "$tmp/out/x.png"
mkdir -p "$tmp/other" && echo '{"_class_name": "FluxPipeline"}' >"$tmp/other/model_index.json"
expect 1 "FluxPipeline" --model "$tmp/other" --prompt x -o "$tmp/out/x.png"
cp -r "$tiny" "$tmp/trunc"
f=$tmp/trunc/transformer/diffusion_pytorch_model.safetensors
truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
expect 1 "diffusion_pytorch_model.safetensors" --model "$tmp/trunc" --prompt x --width 32 \
  --height 32 -o "$tmp/out/x.png"
cp -r "$tiny" "$tmp/shape"
cp "$root/tests/fixtures/zimage/h30/model/transformer/diffusion_pytorch_model.safetensors" \
  "$tmp/shape/transformer/"
expect 1 "loading the transformer" --model "$tmp/shape" --prompt x --width 32 --height 32 \
  -o "$tmp/out/x.png"
cp -r "$tiny" "$tmp/vae"
f=$tmp/vae/vae/diffusion_pytorch_model.safetensors
truncate -s $(( $(stat -c %s "$f") - 100 )) "$f"
expect 1 "loading the VAE" --model "$tmp/vae" --prompt x --width 32 --height 32 \
  -o "$tmp/out/x.png"

# CUDA: refused with a reason on a build or machine without a GPU.
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  expect 2 "--backend cuda:" "${ok[@]}" --backend cuda
  expect 2 "--devices: only used with --backend cuda, and no CUDA GPU is visible" "${ok[@]}" \
    --devices 0
fi

echo "test_cli_errors: all checks passed"
