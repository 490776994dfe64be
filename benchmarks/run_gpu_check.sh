#!/usr/bin/env bash
# Runs the GPU check on a lent GPU machine (see docs/gpu.md), where nothing can be fetched:
# the onnxruntime-gpu wheel arrives in parts (ort.part*, ort.sha256) in PARTS_DIR, the
# serving wheels it lacks in SMALL_WHEELS_DIR.
#   benchmarks/run_gpu_check.sh OUT_DIR MODELS_DIR PARTS_DIR SMALL_WHEELS_DIR
set -euo pipefail
out=$1 models=$2 parts=$3 small=$4
wheel=/tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
cat "$parts"/ort.part* > "$wheel"
echo "$(cat "$parts"/ort.sha256)  $wheel" | sha256sum -c -
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$wheel" "$small"/*.whl
export PYTHONPATH=/tmp/site:$PWD
# CUDA 13 and cuDNN 9 libraries from the nvidia-* wheels beside the machine's PyTorch.
LD_LIBRARY_PATH=$(python3 -c 'import glob, site; print(":".join(sorted({p for s in site.getsitepackages() for p in glob.glob(s + "/nvidia/**/lib", recursive=True)})))'):${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check "$out" --models "$models"
