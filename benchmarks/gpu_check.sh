#!/usr/bin/env bash
# benchmarks/gpu_check.sh [FOLDER] [gpu_check.py options]: the GPU check under a time limit (GPU_CHECK_TIMEOUT, 560 s); its JSON goes to FOLDER, else $OUT, else ./gpu-check.
exec timeout -k 20 "${GPU_CHECK_TIMEOUT:-560}" python "$(dirname "$0")/gpu_check.py" --out "${1:-${OUT:-gpu-check}}" "${@:2}"
