#!/bin/sh
# One prepared run on a lent GPU machine (about 8 minutes on an H100): CUDA golden and
# graph tests, then the speed and precision benchmarks. Wheels missing there (diffusers)
# travel in .whl/. Results land in $OUT; copy them to bench/results/ and the README.
set -u
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers; print(torch.__version__, diffusers.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_model_golden.py \
    tests/test_repeat_work.py 2>&1 | tail -25 | tee "$OUT/cuda_tests.log"
# fast16 is what Automatic runs on a GPU; -3x3 shows what the sub-pixel upsampling does
# there; eager shows what the CUDA graphs buy.
python3 -m bench.bench_engine --only cuda:fast16 cuda:fast16-3x3 cuda:exact cuda:fast \
    cuda:eager cuda:plain --step-repeats 30 --image-runs 3 --name engine_cuda 2>&1 \
    | tee "$OUT/bench_engine.log"
python3 -m bench.bench_precision --devices cuda 2>&1 | tee "$OUT/precision.log"
cp bench/results/engine_cuda.json bench/results/precision.json "$OUT/" 2>/dev/null
exit 0
