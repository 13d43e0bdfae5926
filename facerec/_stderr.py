"""Quiet start-up chatter without importing TensorFlow (the match path never does).

TensorFlow's and MediaPipe's C++ loggers write to file descriptor 2 directly, so
`native_stderr_silenced()` wraps their noisy import / graph-creation steps; Python-level
errors are printed outside it. `facerec._quiet` adds TensorFlow's silenced import for the
modules that need it.
"""

import contextlib
import importlib
import logging
import os
import sys
import types
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


def import_mediapipe():
    """`import mediapipe`, without the seconds it would spend on what recognition never uses.

    MediaPipe's tasks package tries `tensorflow.tools.docs` (for its API docs only; it carries on without
    it), so TensorFlow is hidden while it imports; its drawing helpers import matplotlib.pyplot, which
    stays a stand-in until something uses it (`_Deferred`).
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    if "matplotlib.pyplot" not in sys.modules:
        sys.modules["matplotlib.pyplot"] = _Deferred("matplotlib.pyplot")
    hide = "tensorflow" not in sys.modules
    if hide:
        sys.modules["tensorflow"] = None  # makes `import tensorflow...` raise ModuleNotFoundError
    try:
        import mediapipe
    finally:
        if hide:
            del sys.modules["tensorflow"]
    return mediapipe


class _Deferred(types.ModuleType):
    """A module that is imported for real on its first attribute use (then it is the real one's namespace)."""

    def __getattr__(self, name: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, name)
