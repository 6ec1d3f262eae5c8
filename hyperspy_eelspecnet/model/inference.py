"""Running a loaded model over spectra: batched, traced once, one call at a time."""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .backend import retracing_warnings_dropped

__all__ = ["predict_spectra"]


def predict_spectra(model, spectra, batch_size: int = 256) -> np.ndarray:
    """Run a full model over ``(n, channels)`` spectra in batches; returns float32 spectra.

    The call goes through a compiled inference function (no per-spectrum Python) and the last
    partial batch is padded to ``batch_size`` so only one graph is traced per input length.
    TensorFlow's warning that such functions were traced again is dropped: each model has its
    own function, traced once per length, by design (a session that restores with the
    bundled and a fine-tuned model, or spectra of several lengths, would see it otherwise).
    """
    spectra = np.asarray(spectra, dtype=np.float32)
    n = spectra.shape[0]
    out = np.empty_like(spectra)
    infer, lock = _inference_function(model)
    for start in range(0, n, batch_size):
        chunk = spectra[start: start + batch_size]
        size = chunk.shape[0]
        if size < batch_size and n > batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - size, chunk.shape[1]), np.float32)])
        with lock, retracing_warnings_dropped():
            out[start: start + size] = np.asarray(infer(chunk))[:size]
    return out


_INFERENCE_CACHE = weakref.WeakKeyDictionary()
_INFERENCE_CACHE_LOCK = threading.Lock()


def _inference_function(model):
    """One traced inference function per model and a lock, dropped with the model.

    The lock lets one thread at a time run the network: TensorFlow already spreads one call
    over all CPU cores (or the GPU), so concurrent calls from dask's threads gain no speed and
    each would hold its own activations (~200 MiB per 256-spectrum batch on the CPU).
    """
    with _INFERENCE_CACHE_LOCK:
        if model not in _INFERENCE_CACHE:
            from .backend import import_tensorflow

            tf = import_tensorflow()

            model_ref = weakref.ref(model)
            function = tf.function(lambda x: model_ref()(x, training=False), reduce_retracing=True)
            _INFERENCE_CACHE[model] = (function, threading.Lock())
        return _INFERENCE_CACHE[model]
