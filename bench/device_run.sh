#!/bin/sh
# One prepared run on a lent GPU machine: CUDA golden tests, then the speed and
# precision benchmarks. Wheels missing there (diffusers) travel in .whl/.
set -u
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers; print(torch.__version__, diffusers.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_model_golden.py \
    2>&1 | tail -25 | tee "$OUT/cuda_tests.log"
python3 -m bench.bench_engine --only cuda:plain cuda:exact cuda:fast cuda:fast16 cuda:eager \
    --step-repeats 30 --image-runs 3 --name engine_cuda 2>&1 | tee "$OUT/bench_engine.log"
python3 -m bench.bench_precision --devices cuda 2>&1 | tee "$OUT/precision.log"
cp bench/results/engine_cuda.json bench/results/precision.json "$OUT/" 2>/dev/null
exit 0
