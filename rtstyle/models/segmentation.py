"""Person segmentation: MediaPipe's selfie-segmentation network, run by torch.

The model is Google's MediaPipe Selfie Segmentation (Apache-2.0; MobileNetV3-like encoder,
256×144 "landscape" and 256×256 "general" inputs, ~250 kB of fp16 weights). Its `.tflite`
files ship inside the `mediapipe` wheels up to 0.10.21, and nowhere else on PyPI that
installs without a download at run time. Importing mediapipe is what costs: its wheels
require opencv-contrib-python (which replaces opencv-python's `cv2`), jax, matplotlib and, at
0.10.21, numpy<2 and protobuf<5. So rtstyle never imports it. It reads the model file from
the installed distribution and runs the graph itself, which only needs the `tflite`
flatbuffer schema (pure Python) and torch:

    pip install ".[segment]"                        # tflite (the schema reader)
    pip install --no-deps "mediapipe==0.10.21"      # only the files; none of its deps

`--no-deps` is what keeps the base install intact; `rtstyle` checks the model's SHA-256.

`TfliteGraph` covers the operators these two graphs use (CONV_2D, DEPTHWISE_CONV_2D, ADD,
MUL, MEAN, AVERAGE_POOL_2D, RELU, HARD_SWISH, LOGISTIC, RESIZE_BILINEAR, DEQUANTIZE and
MediaPipe's custom Convolution2DTransposeBias), in NCHW, and refuses any other.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RtstyleError, UserInputError

log = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.21"
INSTALL_HINT = (f'pip install "rtstyle[segment]" && pip install --no-deps '
                f'"mediapipe=={MEDIAPIPE_VERSION}"')


@dataclass(frozen=True)
class SelfieModel:
    file: str            # inside the mediapipe distribution
    width: int
    height: int
    sha256: str


MODELS = {
    "landscape": SelfieModel(
        "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite", 256, 144,
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
    "general": SelfieModel(
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite", 256, 256,
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
}


class SegmentationUnavailableError(UserInputError):
    """The person-segmentation model is not installed (bad input: an option that needs an
    extra; exit code 2)."""


def _mediapipe_root() -> Path | None:
    """The folder holding the `mediapipe` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def model_path(kind: str = "landscape") -> Path:
    """The installed `.tflite` file of `kind`, checked; raises with the install commands."""
    model = MODELS[kind]
    root = _mediapipe_root()
    path = root / model.file if root is not None else None
    if path is None or not path.is_file():
        try:
            version = importlib.metadata.version("mediapipe")
            why = f"mediapipe {version} is installed but has no {Path(model.file).name}"
        except importlib.metadata.PackageNotFoundError:
            why = "the person-segmentation model is not installed"
        raise SegmentationUnavailableError(f"--segment needs MediaPipe's selfie-segmentation "
                                           f"model: {why}; install it with: {INSTALL_HINT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != model.sha256:
        raise SegmentationUnavailableError(f"{path} does not have the expected SHA-256 "
                                           f"({digest[:12]}…); reinstall with: {INSTALL_HINT}")
    return path


def _tflite():
    try:
        import tflite
    except ImportError:
        raise SegmentationUnavailableError(
            f"--segment needs the `tflite` schema reader; install it with: {INSTALL_HINT}"
        ) from None
    return tflite


_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
_ACTIVATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    0: lambda x: x, 1: F.relu, 3: lambda x: x.clamp(0.0, 6.0)}


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME: the output is ceil(size / stride); extra padding goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TfliteGraph(nn.Module):
    """A float TFLite graph (one subgraph, one input, one output) as a torch module, NCHW.

    Weights become buffers (fp16 constants dequantized once); each operator becomes a step
    over a list of tensors. Built once per model; about 100 steps for the selfie models.
    """

    def __init__(self, data: bytes):
        super().__init__()
        tflite = _tflite()
        from tflite.BuiltinOperator import BuiltinOperator

        names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        self.input_index = int(graph.Inputs(0))
        self.output_index = int(graph.Outputs(0))
        self.input_hw = tuple(int(v) for v in graph.Tensors(self.input_index).ShapeAsNumpy()[1:3])
        self._constants: dict[int, torch.Tensor] = {}
        self._steps: list[tuple[str, list[int], int, dict]] = []

        def constant(index: int) -> np.ndarray | None:
            tensor = graph.Tensors(index)
            buffer = model.Buffers(tensor.Buffer())
            if buffer is None or buffer.DataLength() == 0:
                return None
            dtype = {0: np.float32, 1: np.float16, 2: np.int32}[tensor.Type()]
            return buffer.DataAsNumpy().view(dtype).reshape(tensor.ShapeAsNumpy())

        def options(op, cls):
            table = op.BuiltinOptions()
            opts = cls()
            opts.Init(table.Bytes, table.Pos)
            return opts

        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = (code.CustomCode().decode() if builtin == BuiltinOperator.CUSTOM
                    else names.get(builtin, str(builtin)))
            inputs = [int(k) for k in op.InputsAsNumpy()]
            output = int(op.Outputs(0))
            for k in inputs:
                if k >= 0 and k not in self._constants:
                    value = constant(k)
                    if value is not None:
                        self._constants[k] = torch.from_numpy(value.astype(
                            np.int64 if value.dtype == np.int32 else np.float32))
            attrs: dict = {}
            if name == "DEQUANTIZE":
                self._constants[output] = self._constants[inputs[0]].float()
                continue
            if name == "CONV_2D":
                o = options(op, tflite.Conv2DOptions)
                attrs = dict(padding=o.Padding(), stride=(o.StrideH(), o.StrideW()),
                             dilation=(o.DilationHFactor(), o.DilationWFactor()),
                             act=o.FusedActivationFunction())
                w = self._constants[inputs[1]]
                self._constants[inputs[1]] = w.permute(0, 3, 1, 2).contiguous()
            elif name == "DEPTHWISE_CONV_2D":
                o = options(op, tflite.DepthwiseConv2DOptions)
                attrs = dict(padding=o.Padding(), stride=(o.StrideH(), o.StrideW()),
                             dilation=(o.DilationHFactor(), o.DilationWFactor()),
                             act=o.FusedActivationFunction())
                w = self._constants[inputs[1]]
                if w.dim() == 4 and w.shape[0] == 1:
                    self._constants[inputs[1]] = w.permute(3, 0, 1, 2).contiguous()
            elif name in ("ADD", "MUL"):
                cls = tflite.AddOptions if name == "ADD" else tflite.MulOptions
                attrs = dict(act=options(op, cls).FusedActivationFunction())
            elif name == "AVERAGE_POOL_2D":
                o = options(op, tflite.Pool2DOptions)
                attrs = dict(padding=o.Padding(), stride=(o.StrideH(), o.StrideW()),
                             kernel=(o.FilterHeight(), o.FilterWidth()),
                             act=o.FusedActivationFunction())
            elif name == "MEAN":
                attrs = dict(keep=bool(options(op, tflite.ReducerOptions).KeepDims()))
            elif name == "RESIZE_BILINEAR":
                o = options(op, tflite.ResizeBilinearOptions)
                if not (o.AlignCorners() or o.HalfPixelCenters()):
                    raise RtstyleError("TFLite RESIZE_BILINEAR with asymmetric sampling is "
                                       "not supported")
                attrs = dict(align_corners=bool(o.AlignCorners()))
            elif name == "Convolution2DTransposeBias":
                padding, stride_w, stride_h = np.frombuffer(
                    op.CustomOptionsAsNumpy().tobytes()[:12], np.int32)
                attrs = dict(padding=int(padding), stride=(int(stride_h), int(stride_w)))
                w = self._constants[inputs[1]]                     # O, kh, kw, I
                self._constants[inputs[1]] = w.permute(3, 0, 1, 2).contiguous()
            elif name not in ("RELU", "HARD_SWISH", "LOGISTIC"):
                raise RtstyleError(f"TFLite operator {name} is not supported")
            self._steps.append((name, inputs, output, attrs))
        for k, value in self._constants.items():
            self.register_buffer(f"c{k}", value, persistent=False)

    def _const(self, index: int) -> torch.Tensor:
        return getattr(self, f"c{index}")

    def _arg(self, values: dict[int, torch.Tensor], index: int) -> torch.Tensor:
        if index in values:
            return values[index]
        c = self._const(index)
        return c.view(1, -1, 1, 1) if c.dim() == 1 else c.permute(0, 3, 1, 2)

    @staticmethod
    def _pad(x: torch.Tensor, padding: int, kernel, stride, dilation=(1, 1)) -> torch.Tensor:
        if padding != 0:  # VALID
            return x
        top, bottom = _same_padding(x.shape[2], kernel[0], stride[0], dilation[0])
        left, right = _same_padding(x.shape[3], kernel[1], stride[1], dilation[1])
        return F.pad(x, (left, right, top, bottom)) if top or bottom or left or right else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×H×W at the model's input size, in its input range -> N×C×H×W."""
        values = {self.input_index: x}
        for name, inputs, output, a in self._steps:
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w, b = self._const(inputs[1]), self._const(inputs[2])
                src = self._pad(values[inputs[0]], a["padding"], w.shape[2:], a["stride"],
                                a["dilation"])
                groups = src.shape[1] if name == "DEPTHWISE_CONV_2D" else 1
                y = F.conv2d(src, w, b, stride=a["stride"], dilation=a["dilation"],
                             groups=groups)
                y = _ACTIVATIONS[a["act"]](y)
            elif name in ("ADD", "MUL"):
                lhs, rhs = self._arg(values, inputs[0]), self._arg(values, inputs[1])
                y = _ACTIVATIONS[a["act"]](lhs + rhs if name == "ADD" else lhs * rhs)
            elif name == "RELU":
                y = F.relu(values[inputs[0]])
            elif name == "HARD_SWISH":
                y = F.hardswish(values[inputs[0]])
            elif name == "LOGISTIC":
                y = torch.sigmoid(values[inputs[0]])
            elif name == "MEAN":
                axes = [_NHWC_TO_NCHW_AXIS[int(v)] for v in self._const(inputs[1]).tolist()]
                y = values[inputs[0]].mean(axes, keepdim=a["keep"])
            elif name == "AVERAGE_POOL_2D":
                src = self._pad(values[inputs[0]], a["padding"], a["kernel"], a["stride"])
                y = _ACTIVATIONS[a["act"]](F.avg_pool2d(src, a["kernel"], a["stride"]))
            elif name == "RESIZE_BILINEAR":
                size = [int(v) for v in self._const(inputs[1]).tolist()]
                y = F.interpolate(values[inputs[0]], size=size, mode="bilinear",
                                  align_corners=a["align_corners"])
            else:  # Convolution2DTransposeBias
                w, b = self._const(inputs[1]), self._const(inputs[2])
                src = values[inputs[0]]
                y = F.conv_transpose2d(src, w, b, stride=a["stride"])
                if a["padding"] == 0:  # SAME: output = input * stride, centred
                    h, wd = src.shape[2] * a["stride"][0], src.shape[3] * a["stride"][1]
                    top, left = (y.shape[2] - h) // 2, (y.shape[3] - wd) // 2
                    y = y[:, :, top:top + h, left:left + wd]
            values[output] = y
        return values[self.output_index]


class PersonSegmenter(nn.Module):
    """RGB 0..1 frames (N×3×H×W, any size) -> person probability N×1×h×w at the model's size.

    `kind`: "landscape" (256×144, for 16:9 and other wide frames; MediaPipe's choice for
    video calls) or "general" (256×256), picked by aspect when None. The frame is stretched
    to the model's input, as MediaPipe does; the caller upsamples the mask.
    """

    def __init__(self, kind: str = "landscape"):
        super().__init__()
        if kind not in MODELS:
            raise UserInputError(f"unknown segmentation model '{kind}'; choose from: "
                                 f"{', '.join(MODELS)}")
        self.kind = kind
        self.graph = TfliteGraph(model_path(kind).read_bytes())

    @staticmethod
    def kind_for(width: int, height: int) -> str:
        return "landscape" if width >= 1.5 * height else "general"

    @property
    def input_size(self) -> tuple[int, int]:
        """(W, H) of the model's input."""
        return self.graph.input_hw[1], self.graph.input_hw[0]

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        w, h = self.input_size
        x = F.interpolate(x01.float(), size=(h, w), mode="bilinear", antialias=True,
                          align_corners=False)
        return self.graph(x).clamp(0.0, 1.0)
