#!/usr/bin/env bash
# The GPU check, in one go, on a machine with a GPU but no Rust and no internet (a lent device).
# Prepared beforehand on a build machine: `cargo xtask device-bundle` builds `rewind` in release
# once per feature set (default: `cuda,vulkan` and `wgpu`), strips and xz-compresses each into
# target/device/ with manifest.txt (each binary and the $REWIND_DEVICE values of its backends).
# Carry target/device/ with the repository, then, from its root:
#
#     OUT=/some/dir bash bench/device-check.sh
#
# For each backend of each binary (cuda; wgpu compiling SPIR-V in the vulkan build; wgpu
# compiling WGSL in the wgpu build) it runs `rewind gpu-check`: the forced-state agreement with
# the CPU backend for Lenet and Resnet-20, checkpoints moved between devices, masks, an
# interpolation curve, the device-to-host reads of a training step, ms per step and evaluation
# images/s for Lenet, Resnet-20 and VGG-16, and 1 vs 4 concurrent runs. Then PyTorch with CUDA
# (bench/reference.py) when the machine's python3 has it. Every part has its own time limit and
# writes to $OUT/<backend> as it finishes, so a lease that ends early still leaves what was
# done. Render here with `cargo xtask gpu-check --from $OUT/<backend>`.
#
# Rehearsed on Mesa's lavapipe (no GPU; cuda must fail with one message, a vulkan build must
# refuse lavapipe with one message, the wgpu build must pass) with a short check:
#     CHECK_ARGS="--steps 2 --compare lenet --presets lenet --bench-steps 3 --concurrent 1,2 \
#       --concurrent-presets lenet" bash bench/device-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-target/device/out}"
BUNDLE="${BUNDLE:-target/device}"
LIMIT="${LIMIT:-240}"          # seconds per backend's gpu-check
CHECK_ARGS="${CHECK_ARGS:-}"   # more gpu-check options (a lavapipe rehearsal: fewer steps)
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/device-check.log"; }

[ -f "$BUNDLE/manifest.txt" ] || {
    log "no $BUNDLE/manifest.txt: run 'cargo xtask device-bundle' on the build machine and carry target/device"
    exit 1
}
cp "$BUNDLE/build.txt" "$OUT/" 2>/dev/null
BIN_DIR="$(mktemp -d)"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
log "GPU: $(tail -1 "$OUT/gpu.txt")"

# cuda compiles kernels through the LLVM linked into the binary; math functions need CUDA's
# libdevice (a toolkit's nvvm/libdevice, or PyPI's nvidia-cuda-nvcc wheel beside torch).
if [ -z "${CUDA_PATH:-}" ]; then
    for root in /usr/local/cuda /usr/local/cuda-*; do
        [ -f "$root/nvvm/libdevice/libdevice.10.bc" ] && { export CUDA_PATH="$root"; break; }
    done
fi
if [ -z "${CUDA_PATH:-}" ]; then
    found="$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
for base in site.getsitepackages():
    for f in glob.glob(os.path.join(base, "nvidia", "**", "libdevice.10.bc"), recursive=True):
        print(os.path.dirname(os.path.dirname(os.path.dirname(f)))); raise SystemExit
EOF
)"
    [ -n "$found" ] && export CUDA_PATH="$found"
fi
log "CUDA_PATH=${CUDA_PATH:-<none: cuda math functions may fail>}"

LABELS=()
while read -r file selectors; do
    [ -n "$file" ] || continue
    bin="$BIN_DIR/${file%.xz}"
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$BUNDLE/$file" "$bin" || { log "cannot decompress $BUNDLE/$file"; continue; }
    chmod +x "$bin"
    log "$file: $("$bin" --version 2>&1 < /dev/null)"
    for selector in $selectors; do
        device="${selector%%=*}"; label="${selector#*=}"
        dir="$OUT/$label"; mkdir -p "$dir"; cp "$OUT/gpu.txt" "$dir/"
        LABELS+=("$label")
        log "gpu-check: $label ($file, REWIND_DEVICE=$device, limit ${LIMIT}s)"
        start=$(date +%s)
        REWIND_DEVICE="$device" XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" timeout "$LIMIT" \
            "$bin" gpu-check --json "$dir/rewind.json" $CHECK_ARGS < /dev/null > "$dir/rewind.log" 2>&1
        log "gpu-check: $label: exit $? after $(( $(date +%s) - start )) s"
        grep -E "PASS|FAIL|ms/step|steps/s|backend|Error|error" "$dir/rewind.log" | tee -a "$OUT/device-check.log"
    done
done < "$BUNDLE/manifest.txt"

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    log "PyTorch reference on CUDA"
    timeout "$LIMIT" python3 bench/reference.py --device cuda > "$OUT/torch.json" 2> "$OUT/torch.log"
    log "PyTorch: exit $?"
    for label in "${LABELS[@]}"; do cp "$OUT/torch.json" "$OUT/$label/"; done
else
    log "no python3 with CUDA torch: the PyTorch reference is skipped"
fi
log "done"
