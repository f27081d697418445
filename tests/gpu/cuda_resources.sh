#!/usr/bin/env bash
# Compile-time resources of every kernel in core/cuda/*.cu, from ptxas's own report (nvcc
# --resource-usage, the flags of the build): no register spills, at most 255 registers, static
# shared memory within the 48 KiB a block gets without opting in, and none at all in the flash
# kernels (their dynamic tiles, og_fa_smem_bytes, are checked against sm_90's 227 KiB by
# test_cuda_layouts). Needs nvcc, not a GPU.
# Usage: cuda_resources.sh NVCC "ARCHS" SOURCE_DIR   (NVCC empty: no CUDA build, exit 77)
set -u
nvcc=${1:-}
archs=${2:-90}
src=${3:-.}
if [ -z "$nvcc" ]; then
    echo "SKIPPED: built without CUDA"
    exit 77
fi

fail=0
kernels=0
flash=0
report=$(mktemp)
trap 'rm -f "$report"' EXIT
for arch in ${archs//;/ }; do
    arch=${arch%%-*}                      # 90-real -> 90
    case $arch in *[!0-9]* | "") arch=90 ;; # native / all: check sm_90
    esac
    for cu in "$src"/core/cuda/*.cu; do
        if ! "$nvcc" -arch=sm_"$arch" -O3 --use_fast_math --resource-usage -I"$src" \
            -I"$src/third_party" -c "$cu" -o /dev/null >"$report" 2>&1; then
            echo "FAIL: $cu does not compile for sm_$arch:"
            cat "$report"
            fail=1
            continue
        fi
        # One record per kernel: name, registers, spill bytes, static smem bytes.
        while read -r name regs spills smem; do
            kernels=$((kernels + 1))
            case $name in *flash_attn_kernel*) flash=$((flash + 1)) ;; esac
            printf '%-8s %-60s %4s regs %6s B smem %s B spilled\n' "sm_$arch" "$name" "$regs" \
                "$smem" "$spills"
            if [ "$spills" -ne 0 ]; then
                echo "FAIL: $name spills $spills bytes of registers on sm_$arch"
                fail=1
            fi
            if [ "$regs" -gt 255 ]; then
                echo "FAIL: $name uses $regs registers"
                fail=1
            fi
            if [ "$smem" -gt 49152 ]; then
                echo "FAIL: $name has $smem bytes of static shared memory (limit 48 KiB)"
                fail=1
            fi
            case $name in *flash_attn_kernel*)
                if [ "$smem" -ne 0 ]; then
                    echo "FAIL: $name has static shared memory besides its dynamic tiles"
                    fail=1
                fi ;;
            esac
        done < <(awk '
            /Function properties for/ { name = $NF }
            /spill stores/ { split($0, a, ","); s = a[2] + 0; split(a[3], b, " "); spill[name] = s + b[1] }
            /Used [0-9]+ registers/ {
                r = $0; sub(/.*Used /, "", r); r = r + 0
                m = 0
                if (match($0, /[0-9]+ bytes smem/)) { m = substr($0, RSTART, RLENGTH) + 0 }
                print name, r, spill[name] + 0, m
            }' "$report")
    done
done
if [ "$kernels" -eq 0 ] || [ "$flash" -eq 0 ]; then
    echo "FAIL: no kernel report parsed ($kernels kernels, $flash flash kernels): ptxas output changed?"
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "cuda_resources: $kernels kernels, no spills, shared memory within limits"
