"""Quiet start-up chatter without importing TensorFlow (the match path never does).

TensorFlow's and MediaPipe's C++ loggers write to file descriptor 2 directly, so
`native_stderr_silenced()` wraps their noisy import / graph-creation steps; Python-level
errors are printed outside it. `facerec._quiet` adds TensorFlow's silenced import for the
modules that need it.
"""

import contextlib
import logging
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
warnings.filterwarnings("ignore", module="google.protobuf")
warnings.filterwarnings("ignore", module="keras")
logging.getLogger("absl").setLevel(logging.ERROR)
logging.getLogger("tensorflow").setLevel(logging.ERROR)


@contextlib.contextmanager
def native_stderr_silenced():
    """Point fd 2 at /dev/null for the duration (unless FACEREC_VERBOSE is set)."""
    if os.environ.get("FACEREC_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
