#!/bin/bash
# The three GPU stages of docs/science.md ("A first stage on a GPU"), run side by side on the
# lent machine (one NVIDIA H200, 16 CPU cores, PyTorch and JAX but no TensorFlow); Keras and
# its two missing dependencies travel as wheels in .whl/ (README of the device tool).
# Each run's folder is packed into $OUT (defaults to runs/gpu_stage11). Run on 2026-12-04:
# 788, 178 and 407 steps in 6.5 minutes, far fewer than planned: train_on_jax.py then made the
# batch for the index Keras asked, and Keras asks in a shuffled order, so nearly every step
# waited on the generator. Fixed since (checked on 2 CPU cores only); run
# research/gpu_diagnosis.sh first next time (docs/science.md, "A first stage on a GPU").
set -u
OUT=${OUT:-runs/gpu_stage11}
mkdir -p "$OUT" runs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import jax, keras, numpy, scipy; print('jax', jax.__version__, 'keras', keras.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, jax.devices())"
for run in ${RUNS:-a b c}; do
  python3 research/train_on_jax.py --config research/configs/stage11_gpu_$run.yaml --out runs/stage11_gpu_$run --workers ${WORKERS:-5} > "$OUT/train_$run.log" 2>&1 &
done
wait
for run in ${RUNS:-a b c}; do
  tail -4 "$OUT/train_$run.log"
  tar czf "$OUT/stage11_gpu_$run.tgz" -C runs --exclude backup --exclude '*.weights.h5' stage11_gpu_$run
done
ls -la "$OUT"
