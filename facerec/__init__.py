"""facerec: mask-robust face recognition with metric learning.

Importing the package is cheap: TensorFlow and MediaPipe load only when a
model or detector is first used.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so `import facerec` never pulls TensorFlow in as a side effect.
    if name == "Recognizer":
        from facerec.recognizer import Recognizer

        return Recognizer
    raise AttributeError(name)
