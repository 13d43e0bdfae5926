"""Import TensorFlow silenced: import this module before tensorflow or keras (training, export, evaluation).

The recognition path does not import TensorFlow: it needs only `facerec._stderr`.
"""

from facerec._stderr import native_stderr_silenced

# TensorFlow prints CUDA-plugin errors from C++ at import, so every facerec module that needs it
# gets it here, silenced.
with native_stderr_silenced():
    import tensorflow  # noqa: F401,E402
