#!/usr/bin/env bash
# The GPU check, in one go, on a machine with a GPU but no Rust and no internet (a lent device).
# Prepared beforehand on a build machine: `cargo xtask device-bundle` builds `rewind` (release,
# every GPU backend it can hold: cuda and vulkan by default), strips it and xz-compresses it
# into target/device/. Carry target/device/ with the repository, then, from its root:
#
#     OUT=/some/dir bash bench/device-check.sh
#
# Rehearsed on Mesa's lavapipe (no GPU) with a short check:
#     BACKENDS="cuda:0 wgpu" CHECK_ARGS="--steps 2 --compare lenet --presets lenet \
#       --bench-steps 3 --concurrent 1,2 --concurrent-presets lenet" bash bench/device-check.sh
#
# For each GPU backend of the binary (`cuda:0`, `wgpu`: SPIR-V on Vulkan devices that support
# it, WGSL otherwise) it runs `rewind gpu-check`: the forced-state agreement with the CPU
# backend for Lenet and Resnet-20, checkpoints moved between devices, masks, an interpolation
# curve, the device-to-host reads of a training step, ms per step and evaluation images/s for
# Lenet, Resnet-20 and VGG-16, and 1 vs 4 concurrent runs. Then PyTorch with CUDA
# (bench/reference.py) when the machine's python3 has it. Every part has its own time limit
# and writes to $OUT as it finishes, so a lease that ends early still leaves what was done.
# Render the results here with `cargo xtask gpu-check --from $OUT/<backend>` per backend.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-target/device/out}"
BUNDLE="${BUNDLE:-target/device}"
LIMIT="${LIMIT:-240}"          # seconds per backend's gpu-check
BACKENDS="${BACKENDS:-cuda:0 wgpu}"
CHECK_ARGS="${CHECK_ARGS:-}"   # more gpu-check options (a lavapipe rehearsal: fewer steps)
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/device-check.log"; }

BIN="$(mktemp -d)/rewind"
if [ -f "$BUNDLE/rewind.xz" ]; then
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$BUNDLE/rewind.xz" "$BIN" || { log "cannot decompress $BUNDLE/rewind.xz"; exit 1; }
elif [ -f "$BUNDLE/rewind" ]; then
    cp "$BUNDLE/rewind" "$BIN"
else
    log "no $BUNDLE/rewind.xz: run 'cargo xtask device-bundle' on the build machine and carry target/device"
    exit 1
fi
chmod +x "$BIN"
cp "$BUNDLE"/build.txt "$OUT"/ 2>/dev/null
log "binary: $("$BIN" --version 2>&1)"

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

for backend in $BACKENDS; do
    dir="$OUT/${backend%%:*}"
    mkdir -p "$dir"
    cp "$OUT/gpu.txt" "$dir/"
    log "gpu-check on $backend (limit ${LIMIT}s)"
    start=$(date +%s)
    REWIND_DEVICE="$backend" XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" timeout "$LIMIT" \
        "$BIN" gpu-check --json "$dir/rewind.json" $CHECK_ARGS > "$dir/rewind.log" 2>&1
    rc=$?
    log "gpu-check on $backend: exit $rc after $(( $(date +%s) - start )) s"
    grep -E "PASS|FAIL|ms/step|steps/s|backend" "$dir/rewind.log" | tee -a "$OUT/device-check.log"
done

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    log "PyTorch reference on CUDA"
    timeout "$LIMIT" python3 bench/reference.py --device cuda > "$OUT/torch.json" 2> "$OUT/torch.log"
    log "PyTorch: exit $?"
    for backend in $BACKENDS; do cp "$OUT/torch.json" "$OUT/${backend%%:*}/"; done
else
    log "no python3 with CUDA torch: the PyTorch reference is skipped"
fi
log "done"
