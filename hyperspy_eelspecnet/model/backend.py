"""TensorFlow and Keras, imported without TensorFlow's start-up noise.

TensorFlow writes log lines from C++ as its libraries load (oneDNN, CPU instructions, no CUDA
driver), before any logging setting applies, and on a machine without a GPU an error line
("failed call to cuInit") when it first looks for one. To a microscopist these read as failures.
The first import therefore runs with the process's standard error sent to /dev/null (a Python
exception raised by the import still reaches the caller), and ``TF_CPP_MIN_LOG_LEVEL`` defaults
to 3 (see the package's ``__init__``); set it before importing this package to see the logs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

__all__ = ["import_keras", "import_tensorflow", "retracing_warnings_dropped"]

#: What TensorFlow's warning about repeated tf.function tracing says. Keras traces its training
#: step anew for every model it fits, so a session that fits several (fine-tunes, the docs, a
#: notebook) gets it though nothing is wrong, and so does one that restores with several models
#: or at several lengths (one inference function per model, traced once per length): the user
#: can do nothing about it.
RETRACING_MESSAGE = "triggered tf.function retracing"


@contextlib.contextmanager
def _stderr_to_devnull():
    """Send file descriptor 2 (C++ and Python writes alike) to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """The ``tensorflow`` module; its first import is silenced (see the module notes)."""
    if "tensorflow" not in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "3":
        with _stderr_to_devnull():
            import tensorflow
    import tensorflow

    return tensorflow


def import_keras():
    """The ``keras`` module, on a quietly imported TensorFlow."""
    import_tensorflow()
    import keras

    return keras


class _DropRetracing(logging.Filter):
    def filter(self, record):
        return RETRACING_MESSAGE not in record.getMessage()


@contextlib.contextmanager
def retracing_warnings_dropped():
    """Drop TensorFlow's retracing warnings (:data:`RETRACING_MESSAGE`) for a while; its other
    log records pass as before."""
    logger = logging.getLogger("tensorflow")
    dropped = _DropRetracing()
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)
