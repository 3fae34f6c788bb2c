"""InferenceEngine: backend selection, fallbacks, precision guard, shape buckets, engine cache.

Real backends that exist on a CPU machine (eager, onnxruntime) with real (tiny, seeded) weights;
torch.compile is covered in test_engine_compile.py because it takes ~a minute on 2 cores.
"""

from __future__ import annotations

import logging

import pytest
import torch

from rtstyle.errors import BackendUnavailableError, UserInputError
from rtstyle.models.johnson import TransformerNet
from rtstyle.models.lite import LiteTransformerNet
from rtstyle.models.padding import pad_to_multiple, unpad
from rtstyle.models.stylizer import Stylizer
from rtstyle.realtime import engine as engine_module
from rtstyle.realtime.backends import BuildRequest, cpu_has_bf16
from rtstyle.realtime.backends.eager import EagerBackend
from rtstyle.realtime.cache import EngineCache
from rtstyle.realtime.engine import InferenceEngine, relative_error

CPU = torch.device("cpu")


def tiny_stylizer(seed: int = 0, net=None) -> Stylizer:
    torch.manual_seed(seed)
    return Stylizer(net or TransformerNet(channels=8, n_res=1), "0_255").eval()


def image_like(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth structure plus a little noise: the statistics of a frame, not of uniform noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, (xx + yy) / 2])[None]
    return (base + 0.05 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)


def reference(stylizer: Stylizer, x: torch.Tensor, bucket: int) -> torch.Tensor:
    """FP32 eager on the same bucket padding the engine applies, cropped back."""
    padded, size = pad_to_multiple(x, bucket)
    with torch.inference_mode():
        return unpad(stylizer(padded), size)


class CountingEager(EagerBackend):
    """Eager, but counts builds: proves what the engine builds once and reuses."""

    name = "counting"

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []

    def precisions(self, device):
        return [torch.float32]

    def build(self, request: BuildRequest):
        self.shapes.append(request.shape)
        return super().build(request)


class BrokenBackend(EagerBackend):
    """A low-precision build gone wrong: every pixel off by 0.2."""

    name = "broken"

    def precisions(self, device):
        return [torch.bfloat16]

    def build(self, request: BuildRequest):
        run = super().build(request)
        return lambda x: (run(x).float() + 0.2).clamp(0, 1)


class FailingBackend(EagerBackend):
    name = "failing"

    def build(self, request: BuildRequest):
        raise RuntimeError("no kernel for this op")


@pytest.fixture
def no_small_shape_rule(monkeypatch):
    """`auto` runs eager on thumbnails; these tests want the real selection at tiny sizes."""
    monkeypatch.setattr(engine_module, "AUTO_MIN_BUILD_PIXELS", 0)


def test_auto_on_cpu_lists_candidates_and_says_why_tensorrt_is_skipped(caplog):
    with caplog.at_level(logging.INFO, logger="rtstyle.realtime.engine"):
        engine = InferenceEngine(tiny_stylizer(), CPU, backend="auto")
    labels = [c.label for c in engine.candidates]
    assert "tensorrt" not in {c.backend.name for c in engine.candidates}
    assert "GPU" in engine.skipped["tensorrt"]
    assert labels[-1] in ("eager/fp32", "eager/bf16")
    assert labels.index("onnxruntime/fp32") < labels.index("eager/fp32")
    assert "backend tensorrt skipped" in caplog.text


def test_explicit_unavailable_backend_raises_with_the_reason():
    with pytest.raises(BackendUnavailableError, match="NVIDIA GPU"):
        InferenceEngine(tiny_stylizer(), CPU, backend="tensorrt")


def test_unknown_backend_and_precision_are_user_errors():
    with pytest.raises(UserInputError, match="choose from"):
        InferenceEngine(tiny_stylizer(), CPU, backend="warp")
    with pytest.raises(UserInputError, match="precision"):
        InferenceEngine(tiny_stylizer(), CPU, backend="eager", precision="int4")


def test_onnx_alias_and_unsupported_precision():
    assert InferenceEngine(tiny_stylizer(), CPU, backend="onnx").backend == "onnxruntime"
    with pytest.raises(BackendUnavailableError, match="no fp16"):
        InferenceEngine(tiny_stylizer(), CPU, backend="onnxruntime", precision="fp16")


def test_auto_runs_eager_for_thumbnails_without_building_anything():
    engine = InferenceEngine(tiny_stylizer(), CPU, backend="auto")
    y = engine(image_like(41, 67))
    assert engine.backend == "eager" and engine.precision == "fp32"
    assert y.shape == (1, 3, 41, 67) and y.dtype == torch.float32


def test_build_failure_falls_back_and_is_logged(no_small_shape_rule):
    messages: list[str] = []
    engine = InferenceEngine(tiny_stylizer(), CPU, backend="auto", on_status=messages.append,
                             backends={"failing": FailingBackend(), "eager": EagerBackend()})
    engine(image_like(41, 67))
    assert engine.backend == "eager"
    assert "no kernel for this op" in engine.skipped["failing/fp32"]
    assert any("rejected" in m and "falling back to eager/fp32" in m for m in messages)


def test_precision_guard_rejects_a_broken_backend(no_small_shape_rule):
    stylizer = tiny_stylizer()
    messages: list[str] = []
    engine = InferenceEngine(stylizer, CPU, backend="auto", on_status=messages.append,
                             backends={"broken": BrokenBackend(), "eager": EagerBackend()})
    x = image_like(41, 67)
    y = engine(x)
    assert engine.backend == "eager" and engine.precision == "fp32"
    assert "relative error" in engine.skipped["broken/bf16"]
    assert any("broken/bf16 rejected" in m for m in messages)
    torch.testing.assert_close(y, reference(stylizer, x, engine.bucket), atol=1e-6, rtol=0)


def test_precision_guard_with_an_explicit_backend_raises_instead_of_running_it():
    engine = InferenceEngine(tiny_stylizer(), CPU, backend="broken",
                             backends={"broken": BrokenBackend(), "eager": EagerBackend()})
    with pytest.raises(BackendUnavailableError, match="relative error"):
        engine(image_like(41, 67))


def test_relative_error_floors_dark_references():
    black = torch.zeros(1, 3, 8, 8)
    assert relative_error(black + 0.001, black) == pytest.approx(0.001 / 0.05)
    assert relative_error(black + 0.5, black + 0.5) == 0


def test_shape_buckets_build_once_per_bucket_and_crop_back(no_small_shape_rule):
    counting = CountingEager()
    engine = InferenceEngine(tiny_stylizer(), CPU, backend="counting", bucket=16,
                             backends={"counting": counting})
    for h, w in [(41, 67), (48, 80), (45, 70), (41, 67)]:
        assert engine(image_like(h, w)).shape == (1, 3, h, w)
    assert counting.shapes == [(1, 3, 48, 80)]
    engine(image_like(50, 67))
    assert counting.shapes == [(1, 3, 48, 80), (1, 3, 64, 80)]


def test_bucket_respects_the_generator_stride():
    lite = Stylizer(LiteTransformerNet(channels=4, n_res=1), "0_255")
    assert InferenceEngine(lite, CPU, backend="eager", bucket=4).bucket == 8


def test_onnx_engine_cache_hit_on_second_build_of_the_same_shape(tmp_path, no_small_shape_rule):
    cache = EngineCache(root=tmp_path / "engines")
    stylizer = tiny_stylizer()
    x = image_like(41, 67)
    first = InferenceEngine(stylizer, CPU, backend="onnxruntime", cache=cache)
    y1 = first(x)
    assert (cache.builds, cache.hits) == (1, 0)
    second = InferenceEngine(stylizer, CPU, backend="onnxruntime", cache=cache)
    y2 = second(x)
    assert (cache.builds, cache.hits) == (1, 1)
    assert len(list((tmp_path / "engines" / "onnxruntime").glob("*.onnx"))) == 1
    assert not list((tmp_path / "engines" / "onnxruntime").glob(".*"))  # no temp files left
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(y1, reference(stylizer, x, first.bucket), atol=1e-4, rtol=0)


def test_cache_key_changes_with_weights_and_shape():
    a = EngineCache.key(backend="onnxruntime", weights="w1", shape=(1, 3, 48, 80))
    assert a == EngineCache.key(shape=(1, 3, 48, 80), weights="w1", backend="onnxruntime")
    assert a != EngineCache.key(backend="onnxruntime", weights="w2", shape=(1, 3, 48, 80))
    assert a != EngineCache.key(backend="onnxruntime", weights="w1", shape=(1, 3, 48, 96))


def test_fingerprint_sees_weights_and_range():
    from rtstyle.realtime.cache import module_fingerprint

    a, b = tiny_stylizer(seed=0), tiny_stylizer(seed=0)
    assert module_fingerprint(a) == module_fingerprint(b)
    b.input_range = "-1_1"
    assert module_fingerprint(a) != module_fingerprint(b)
    assert module_fingerprint(a) != module_fingerprint(tiny_stylizer(seed=1))


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native BF16")
def test_eager_bf16_agrees_with_fp32_on_an_odd_size():
    stylizer = tiny_stylizer()
    engine = InferenceEngine(stylizer, CPU, backend="eager", precision="bf16")
    x = image_like(41, 67)
    y = engine(x)
    assert engine.precision == "bf16"
    ref = reference(stylizer, x, engine.bucket)
    assert relative_error(y, ref) < engine.guard_threshold
    assert (y - ref).abs().max() < 0.05


def test_lite_net_through_onnxruntime_agrees_on_an_odd_size(tmp_path, no_small_shape_rule):
    stylizer = Stylizer(LiteTransformerNet(channels=4, n_res=1), "0_255").eval()
    engine = InferenceEngine(stylizer, CPU, backend="onnxruntime",
                             cache=EngineCache(root=tmp_path))
    x = image_like(41, 67)
    torch.testing.assert_close(engine(x), reference(stylizer, x, engine.bucket), atol=1e-4,
                               rtol=0)
