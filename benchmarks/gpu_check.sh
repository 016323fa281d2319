#!/usr/bin/env bash
# The one command of issue 6's GPU check, from the repository root of a GPU machine without
# internet (benchmarks/bench_gpu.py says what it measures). It needs two ignored folders
# carried beside the working tree:
#   .whl/  wheels of the dependencies that machine lacks (omegaconf, hydra-core, antlr4;
#          PyYAML and packaging are installed only where python3 cannot import them)
#   .gpu/  model.pt (a Multi30k checkpoint without optimizer state) and data/ (its test split,
#          dictionaries, manifest.json, spm.model)
# Writes OUT/env.txt, OUT/gpu.log and OUT/results.json; extra arguments go to bench_gpu.py.
#
#     OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
SITE=/tmp/nmt-preln-site
mkdir -p "$OUT"

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
        --format=csv
    nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw,utilization.gpu --format=csv
    python3 -c 'import platform, torch, triton; print("python", platform.python_version(),
        "torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)'
    nproc
} 2>&1 | tee "$OUT/env.txt"

install() {  # a wheel is a zip file: without pip, unpacking it is the installation
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$SITE" "$@" \
        || for wheel in "$@"; do python3 -m zipfile -e "$wheel" "$SITE"; done
}
required=()
for wheel in .whl/*.whl; do
    case $wheel in
        */pyyaml-*) python3 -c 'import yaml' 2>/dev/null || install "$wheel" ;;
        */packaging-*) python3 -c 'import packaging' 2>/dev/null || install "$wheel" ;;
        *) required+=("$wheel") ;;
    esac
done
install "${required[@]}" 2>&1 | tee -a "$OUT/env.txt"
export PYTHONPATH="$SITE:$PWD"
python3 -c 'import omegaconf, hydra, nmt_preln.config; print("imports ok")' 2>&1 \
    | tee -a "$OUT/env.txt"

PYTHONUNBUFFERED=1 timeout -k 5 345 python3 benchmarks/bench_gpu.py --gpu-dir .gpu \
    --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu.log"
status=${PIPESTATUS[0]}
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$OUT/env.txt"
exit "$status"
