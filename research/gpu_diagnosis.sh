# Where the GPU stages' time went (docs/science.md, "A first stage on a GPU"): the generator,
# alone and in a pool of 5 and 14 processes; host-to-device copies; the train step with host
# batches; the forward pass on device-resident batches; fit on train_on_jax.py's pooled
# batches (14 processes; the fix of its batch order). About 2.5 minutes on the lent machine:
#   bash research/gpu_diagnosis.sh   (with .whl/ carried, as in research/gpu_stage11.sh)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
nproc; python3 -c "import numpy, scipy; print(numpy.__version__, scipy.__version__)"
cat > /tmp/d.py <<'PY'
import sys, time, os, multiprocessing
sys.path.insert(0, "research")
import train_on_jax as t
import numpy as np
tr = t.trainer
config = tr.TrainConfig.from_yaml("research/configs/stage11_gpu_a.yaml")
t._WORKER_STATE["dataset"] = tr.GeneratedSpectra(config, None)
t0 = time.time()
for i in range(5): t._make_batch((0, i))
print("single-process generator batch32/s", 5 / (time.time() - t0), flush=True)
for n in (5, 14):
    pool = multiprocessing.get_context("fork").Pool(n)
    t0 = time.time()
    rs = [pool.apply_async(t._make_batch, ((0, i),)) for i in range(4 * n)]
    [r.get() for r in rs]
    print(f"pool {n} workers batch32/s", 4 * n / (time.time() - t0), flush=True)
    pool.close()
import jax
print(jax.devices(), flush=True)
for mb in (0.8, 25):
    a = np.ones(int(mb * 2**18), np.float32)
    jax.block_until_ready(jax.device_put(a))
    t0 = time.time()
    for i in range(10): jax.block_until_ready(jax.device_put(a))
    print(f"host-to-device MB/s at {mb} MB", 10 * mb / (time.time() - t0), flush=True)
keras = tr.keras
core = tr._build_core(config)
core.compile(optimizer=keras.optimizers.Adam(1e-5, clipnorm=1.0), loss=tr.training_loss(config))
for b in (32, 256):
    x, y = tr.make_training_batch(config.generator_configs, tr._mixture_shares(config), b, np.random.SeedSequence(1), config.epsilon, None, config.feature_weight, config.noise_weight_exponent)
    t0 = time.time(); core.train_on_batch(x, y); print("first step s", time.time() - t0, flush=True)
    t0 = time.time()
    for i in range(20): core.train_on_batch(x, y)
    print(f"train_on_batch steps/s batch{b}", 20 / (time.time() - t0), flush=True)
    xs = jax.device_put(x); ys = jax.device_put(y)
    t0 = time.time()
    for i in range(20): out = core(xs, training=False)
    jax.block_until_ready(out)
    print(f"forward/s batch{b}", 20 / (time.time() - t0), out.devices() if hasattr(out, "devices") else "", flush=True)
PY
cat >> /tmp/d.py <<'PY'
import dataclasses
short = dataclasses.replace(config, steps_per_epoch=300)
t._WORKER_STATE["dataset"] = tr.GeneratedSpectra(short, None)
t._WORKER_STATE["pool"] = multiprocessing.get_context("fork").Pool(14)
data = t.PooledSpectra(short, None)
core.fit(data, epochs=1, verbose=0, steps_per_epoch=20)
t0 = time.time(); core.fit(data, epochs=1, verbose=0, steps_per_epoch=280)
print("fit on pooled batches of 32, steps/s", 280 / (time.time() - t0), flush=True)
PY
timeout 170 python3 /tmp/d.py 2>&1 | grep -v cuda_timer
