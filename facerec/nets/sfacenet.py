"""SFace rebuilt as a Keras 3 network, its weights read from OpenCV Zoo's int8 ONNX file.

A MobileFaceNet-style stack (a 3×3 conv, then 13 depthwise 3×3 + pointwise 1×1 blocks, each conv
followed by BatchNorm and PReLU; stride 2 in blocks 3, 5, 7 and 13: 112 -> 7), then BatchNorm, a
7×7×1024 -> 128 dense and a BatchNorm. Rebuilt so it can be fine-tuned and exported like our other
backbones. The ONNX weights are `DequantizeLinear(int8, scale, zero_point)` with `block_size`,
dequantised here in NumPy. Two details keep it exact: zero padding is explicit before every 3×3 conv
(Keras' stride-2 "same" pads differently from ONNX's symmetric pads), and the dense kernel's rows
are permuted from ONNX's C,H,W flatten order to Keras' H,W,C.
"""

from __future__ import annotations

import os

import numpy as np

# Blocks 2..14: pointwise filters; the depthwise conv before each has stride 2 in blocks 3, 5, 7, 13.
POINTWISE = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
STRIDE2 = {3, 5, 7, 13}
STEM = 32
MEAN, SCALE = 127.5, 1 / 128  # the graph's Sub / Mul, on RGB pixels
INPUT_SIZE, EMBEDDING_DIM = 112, 128
BN_EPS, HEAD_BN_EPS = 1e-3, 2e-5


def _conv_unit(x, name: str, filters: int | None, kernel: int, stride: int):
    """conv (depthwise when `filters` is None) -> BatchNorm -> PReLU, named as in the ONNX graph."""
    from keras import layers

    if kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    if filters is None:
        x = layers.DepthwiseConv2D(kernel, stride, use_bias=False, name=f"{name}_conv2d")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, use_bias=False, name=f"{name}_conv2d")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=BN_EPS, name=f"{name}_batchnorm")(x)
    return layers.PReLU(shared_axes=[1, 2], name=f"{name}_relu")(x)


def features(pixels):
    """The convolutional stack on RGB pixels 0..255 -> [N, 7, 7, 1024] (for 112×112 input)."""
    from keras import layers

    x = layers.Rescaling(SCALE, offset=-MEAN * SCALE, name="normalise")(pixels)
    x = _conv_unit(x, "conv_1", STEM, 3, 1)
    for block, filters in enumerate(POINTWISE, start=2):
        x = _conv_unit(x, f"conv_{block}_dw", None, 3, 2 if block in STRIDE2 else 1)
        x = _conv_unit(x, f"conv_{block}", filters, 1, 1)
    return x


def head(x, dropout: float):
    """BatchNorm -> dropout -> flatten -> dense 128 (with bias) -> BatchNorm: SFace's embedding layers."""
    from keras import layers

    x = layers.BatchNormalization(momentum=0.9, epsilon=HEAD_BN_EPS, name="bn1")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(EMBEDDING_DIM, name="embedding")(x)
    return layers.BatchNormalization(momentum=0.9, epsilon=HEAD_BN_EPS, name="embedding_bn")(x)


def onnx_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every weight of the ONNX file as float32 NumPy, int8 blocks dequantised and reshaped."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    out = dict(init)
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            q, scale, zero = (init[i] for i in node.input)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            axis, block = attrs.get("axis", 1), attrs.get("block_size", 0)
            if block:  # each scale covers `block` consecutive values along `axis`
                n = q.shape[axis]
                scale = np.repeat(scale, block, axis=axis).take(range(n), axis=axis)
                zero = np.repeat(zero, block, axis=axis).take(range(n), axis=axis)
            out[node.output[0]] = (q.astype(np.float32) - zero.astype(np.float32)) * scale
        elif node.op_type == "Reshape" and node.input[0] in out:
            out[node.output[0]] = out[node.input[0]].reshape(init[node.input[1]])
    return out


def load_sface_weights(model, path: str | os.PathLike) -> None:
    """Set the Keras SFace layers of `model` (nested models searched) from the ONNX file at `path`."""
    w = onnx_weights(path)
    layers = {l.name: l for l in _all_layers(model)}

    def bn(layer, prefix):
        layers[layer].set_weights([w[f"{prefix}_gamma"], w[f"{prefix}_beta"],
                                   w[f"{prefix}_moving_mean"], w[f"{prefix}_moving_var"]])

    units = ["conv_1"] + [u for b in range(2, 2 + len(POINTWISE)) for u in (f"conv_{b}_dw", f"conv_{b}")]
    for u in units:
        k = w[f"{u}_conv2d_weight_reshaped"]  # [O, I/groups, kh, kw]
        kernel = k.transpose(2, 3, 0, 1) if u.endswith("_dw") else k.transpose(2, 3, 1, 0)
        layers[f"{u}_conv2d"].set_weights([kernel])
        bn(f"{u}_batchnorm", f"{u}_batchnorm")
        layers[f"{u}_relu"].set_weights([w[f"{u}_relu_gamma"].reshape(1, 1, -1)])
    bn("bn1", "bn1")
    dense = w["pre_fc1_weight_dequantized"]  # [128, C*H*W]
    c = layers["bn1"].get_weights()[0].shape[0]
    side = int(round((dense.shape[1] // c) ** 0.5))
    kernel = dense.reshape(-1, c, side, side).transpose(2, 3, 1, 0).reshape(-1, dense.shape[0])
    layers["embedding"].set_weights([kernel, w["pre_fc1_bias_dequantized"]])
    bn("embedding_bn", "fc1")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
