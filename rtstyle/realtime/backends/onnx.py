"""ONNX export (torch.onnx dynamo exporter) and the onnxruntime backend.

`export_onnx` serves both the `rtstyle export onnx` verb (dynamic batch/height/width, for use
outside rtstyle) and this backend (one static graph per shape bucket, which lets onnxruntime
plan memory and fold shapes). Exported graphs are cached on disk: the export itself takes
seconds to tens of seconds on a small CPU.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import BackendUnavailableError
from . import Backend, BuildRequest, Runner, graph_inputs, register_backend

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"


def _padding_wrapper(module: nn.Module, multiple: int) -> nn.Module:
    """`module` behind a reflect-pad to `multiple` and a crop back, with no Python branch on the
    input size.

    The generators' own `pad_to_multiple` skips padding when none is needed; that `if` would
    pin a dynamic-shape export to the example's size. Padding here first makes the inner
    branch always take the no-pad path, so the graph is valid for every height and width.
    (Defined on use: this package does not import torch at import time.)
    """
    import torch.nn.functional as F
    from torch import nn

    class PadToMultiple(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2], x.shape[-1]
            ph = (multiple - h % multiple) % multiple
            pw = (multiple - w % multiple) % multiple
            y = self.module(F.pad(x, (0, pw, 0, ph), mode="reflect"))
            return y[..., :h, :w]

    return PadToMultiple().eval()


def stride_multiple(module: nn.Module) -> int:
    """The generator's downsampling factor (`Stylizer.net.stride_multiple`), 1 if it has none."""
    net = getattr(module, "net", module)
    return int(getattr(net, "stride_multiple", 1))


def _drop_torchvision_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("torchvision is not installed")


def quiet_torch_exporter() -> None:
    """Silence what torch's exporter says about itself, not about our graph: a warning per
    torchvision op it skips when torchvision is absent (we use none), and a FutureWarning from
    torch's own pytree (`LeafSpec`) while it copies the program. Both filters are narrow."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    if _drop_torchvision_notice not in registration.filters:
        registration.addFilter(_drop_torchvision_notice)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)


def export_onnx(module: nn.Module, path: Path, example: torch.Tensor, *,
                dynamic: bool, extra_inputs: tuple[torch.Tensor, ...] = ()) -> None:
    """Write `module` (N×3×H×W RGB 0..1 in and out) as ONNX; `dynamic` frees N, H and W.

    `extra_inputs` (a multi-style net's style vector, static graphs only) become the graph's
    inputs `style0`, `style1`…; without them a multi-style net is exported with its current
    style weights as constants."""
    if importlib.util.find_spec("onnxscript") is None:
        raise BackendUnavailableError("ONNX export needs onnxscript (pip install 'rtstyle[onnx]')")
    import torch

    quiet_torch_exporter()
    module = copy.deepcopy(module).float().eval().cpu()  # .float()/.cpu() act in place
    example = example.float().cpu()
    kwargs: dict = {}
    if dynamic:
        from torch.export import Dim

        multiple = max(stride_multiple(module), 1)
        module = _padding_wrapper(module, multiple)
        kwargs["dynamic_shapes"] = {"x": {0: Dim("batch", min=1, max=64),
                                          2: Dim("height", min=multiple, max=8192),
                                          3: Dim("width", min=multiple, max=8192)}}
    extra = tuple(t.detach().float().cpu().clone() for t in extra_inputs)
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(module, (example, *extra), dynamo=True,
                                    opset_version=OPSET,
                                    input_names=[INPUT_NAME, *extra_input_names(len(extra))],
                                    output_names=[OUTPUT_NAME], verbose=False, **kwargs)
    program.save(str(path))


def extra_input_names(count: int) -> list[str]:
    return [f"style{i}" for i in range(count)]


def make_session(path: Path, device: torch.device, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if device.type == "cuda":
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                     "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


# CPU speed-up over FP32 eager at 640×360 on a Xeon: 1.0 (lite net), 1.26 (Johnson); a build
# is an export of a few seconds.
@register_backend("onnxruntime", aliases=("onnx", "ort"), rank={"cuda": 2, "cpu": 1},
                  precisions={"cuda": ("fp32",), "cpu": ("fp32",)},
                  speedup={"cpu": 1.0, "cuda": 1.0}, build_seconds={"cpu": 10.0, "cuda": 10.0})
class OnnxRuntimeBackend(Backend):
    def unavailable_reason(self, device: torch.device) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install 'rtstyle[onnx]')"
        if importlib.util.find_spec("onnxscript") is None:
            return "onnxscript is not installed (pip install 'rtstyle[onnx]')"
        if device.type == "cuda":
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                return "this onnxruntime build has no CUDAExecutionProvider (onnxruntime-gpu)"
        elif device.type != "cpu":
            return f"not set up for {device.type}"
        return None

    def _key(self, request: BuildRequest) -> str:
        import onnxruntime as ort
        import torch

        return request.cache.key(backend=self.name, weights=request.fingerprint,
                                 shape=request.shape, dtype="float32", opset=OPSET,
                                 torch=torch.__version__, onnxruntime=ort.__version__)

    def cached(self, request: BuildRequest) -> bool:
        return request.cache.contains(self.name, self._key(request), ".onnx")

    def build(self, request: BuildRequest) -> Runner:
        import numpy as np
        import torch

        example = torch.rand(request.shape)
        session = request.cache.load_or_build(
            self.name, self._key(request), ".onnx",
            lambda tmp: export_onnx(request.module, tmp, example, dynamic=False,
                                    extra_inputs=graph_inputs(request.module)),
            lambda path: make_session(path, request.device, threads=torch.get_num_threads()))
        if request.device.type == "cuda":
            if graph_inputs(request.module):
                raise BackendUnavailableError("multi-style nets are not wired for onnxruntime "
                                              "on CUDA yet")
            return _cuda_runner(session, request.device)

        def run(x: torch.Tensor) -> torch.Tensor:
            feed = {INPUT_NAME: np.ascontiguousarray(x.detach().float().numpy())}
            extra = graph_inputs(request.module)
            feed.update({name: t.detach().float().cpu().numpy()
                         for name, t in zip(extra_input_names(len(extra)), extra, strict=True)})
            return torch.from_numpy(session.run([OUTPUT_NAME], feed)[0])

        return run


def _cuda_runner(session, device: torch.device) -> Runner:
    """I/O binding keeps tensors on the GPU (no host round trip). Untested here: no GPU."""
    import numpy as np
    import torch

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.float().contiguous()
        y = torch.empty_like(x)
        binding = session.io_binding()
        binding.bind_input(INPUT_NAME, "cuda", device.index or 0, np.float32, tuple(x.shape),
                           x.data_ptr())
        binding.bind_output(OUTPUT_NAME, "cuda", device.index or 0, np.float32, tuple(y.shape),
                            y.data_ptr())
        torch.cuda.current_stream(device).synchronize()
        session.run_with_iobinding(binding)
        return y

    return run
