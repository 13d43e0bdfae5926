"""Light imports of the heavy libraries on the match path: only the parts recognition uses load now.

A cold `facerec-match` pays every import; MediaPipe's and OpenVINO's package `__init__`s load far more
than recognition needs (measured in docs/evaluation.md, Runtimes). The rest still loads on first use,
so other code in the process sees the whole library.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types


@contextlib.contextmanager
def _without(module: str):
    """`import module` raises ModuleNotFoundError meanwhile, unless it is already loaded."""
    if module in sys.modules:
        yield
        return
    sys.modules[module] = None
    try:
        yield
    finally:
        del sys.modules[module]


def import_openvino():
    """`import openvino` without its model-conversion API (`openvino.tools.ovc`, with its telemetry and
    urllib: about half of the import), which loads on first use of `openvino.convert_model`."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    with _without("openvino.tools.ovc"):  # openvino's __init__ imports it inside try/except ImportError
        import openvino

    def deferred(name: str):
        if name != "convert_model":
            raise AttributeError(f"module 'openvino' has no attribute {name!r}")
        from openvino.tools.ovc import convert_model

        openvino.convert_model = convert_model
        return convert_model

    openvino.__getattr__ = deferred  # a module's __getattr__ answers the names it lacks (PEP 562)
    return openvino


_openvino_core = None


def openvino_core():
    """One OpenVINO Core per process, shared by the embedding runtime and the mask-presence CNN: it holds the
    CPU plugin and its thread pool."""
    global _openvino_core
    if _openvino_core is None:
        _openvino_core = import_openvino().Core()
    return _openvino_core


def import_mediapipe():
    """MediaPipe with its face detection and face mesh solutions loaded, and nothing else of it yet.

    `import mediapipe` loads every solution, their drawing helpers (matplotlib) and the tasks API, which
    probes `tensorflow.tools.docs`: ~2 s of a cold `facerec-match` on this machine, against ~0.4 s for
    the two solutions recognition uses. So the `mediapipe` and `mediapipe.python.solutions` packages are
    entered without running their `__init__`; each runs it on the first name it lacks (`_LazyPackage`),
    so other code in the process still sees all of MediaPipe. TensorFlow stays hidden while it imports.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'mediapipe'", name="mediapipe")
    root = spec.submodule_search_locations[0]
    try:
        with _without("tensorflow"):  # the tasks API, if anything loads it, probes it for its docs only
            mp = sys.modules["mediapipe"] = _LazyPackage("mediapipe", os.path.join(root, "__init__.py"))
            importlib.import_module("mediapipe.python")
            solutions = _LazyPackage("mediapipe.python.solutions",
                                     os.path.join(root, "python", "solutions", "__init__.py"))
            sys.modules[solutions.__name__] = mp.python.solutions = mp.solutions = solutions
            importlib.import_module("mediapipe.python.solutions.face_detection")
            importlib.import_module("mediapipe.python.solutions.face_mesh")
    except BaseException:
        for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")]:
            del sys.modules[name]
        raise
    return mp


class _LazyPackage(types.ModuleType):
    """A package whose submodules import without its `__init__`, which runs on its first missing name."""

    def __init__(self, name: str, init: str):
        super().__init__(name)
        self.__file__, self.__path__ = init, [os.path.dirname(init)]
        self.__package__ = name
        self.__dict__["_init_pending"] = True

    def __getattr__(self, name: str):
        if not self.__dict__.pop("_init_pending", False):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        with open(self.__file__, encoding="utf-8") as f:
            exec(compile(f.read(), self.__file__, "exec"), self.__dict__)
        return getattr(self, name)
