"""Backends register where they are defined; one list feeds help, errors and `auto`.

Also `auto`'s build-cost rule, with real throwaway backends whose builds go through a real
`EngineCache` (no Inductor here: test_engine_cache_compile.py has the compiled backend).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from test_engine import image_like, reference

from rtstyle.errors import UserInputError
from rtstyle.models.architectures import build_generator
from rtstyle.models.stylizer import Stylizer
from rtstyle.realtime.backends import (
    BuildRequest,
    backend_aliases,
    backend_help,
    backend_names,
    get_backend,
    register_backend,
    resolve_backend_name,
    speed_order,
    unregister_backend,
)
from rtstyle.realtime.backends.eager import EagerBackend
from rtstyle.realtime.cache import EngineCache
from rtstyle.realtime.engine import InferenceEngine

CPU = torch.device("cpu")
SIZE = (136, 160)  # over auto's 128×128 thumbnail rule, so the real selection runs


def lite_stylizer(seed: int = 0) -> Stylizer:
    torch.manual_seed(seed)
    return Stylizer(build_generator("johnson-lite"), "0_255").eval()


def listed(message: str) -> list[str]:
    return message.split("choose from: ", 1)[1].split(", ")


def test_error_help_and_auto_use_the_same_names():
    with pytest.raises(UserInputError, match="unknown backend 'warp'") as info:
        InferenceEngine(lite_stylizer(), CPU, backend="warp")
    in_error = listed(str(info.value))
    engine = InferenceEngine(lite_stylizer(), CPU, backend="auto")
    tried_by_auto = list(dict.fromkeys([c.backend.name for c in engine.candidates]
                                       + [n for n in engine.skipped if "/" not in n]))
    in_help = re.sub(r" \(or [^)]*\)", "", backend_help()).split(", ")
    assert in_error[0] == in_help[0] == "auto"
    assert in_error[1:] == in_help[1:] == backend_names()
    assert sorted(tried_by_auto) == sorted(backend_names()) == sorted(backend_names("cpu"))
    assert [c.backend.name for c in engine.candidates if c.backend.name in speed_order("cpu")] \
        == [c.backend.name for c in engine.candidates]
    assert {"eager", "compile", "onnxruntime", "tensorrt"} <= set(backend_names())


def test_aliases_resolve_to_one_name_and_unknown_names_list_the_valid_ones():
    assert backend_aliases()["onnx"] == resolve_backend_name("ort") == "onnxruntime"
    assert resolve_backend_name("trt") == "tensorrt"
    assert resolve_backend_name("auto") == "auto"
    with pytest.raises(UserInputError) as info:
        resolve_backend_name("onnxrt")
    assert listed(str(info.value)) == ["auto", *backend_names()]
    assert "(or onnx, ort)" in backend_help()


def test_speed_order_per_device():
    assert speed_order("cpu") == speed_order("cpu") == ["compile", "onnxruntime", "eager"]
    assert backend_names("cpu") == ["compile", "onnxruntime", "eager", "tensorrt"]
    assert speed_order("cuda") == backend_names("cuda") == ["tensorrt", "compile",
                                                            "onnxruntime", "eager"]


def test_a_name_can_be_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_backend("eager")(type("Again", (EagerBackend,), {}))
    with pytest.raises(ValueError, match="already registered"):
        register_backend("other", aliases=("onnx",))(type("Again", (EagerBackend,), {}))


def test_listing_the_names_imports_no_heavy_library():
    code = ("import sys; from rtstyle.realtime.backends import backend_help; backend_help(); "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'torch_tensorrt', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


class CachedEager(EagerBackend):
    """Eager, but its "build" is a file in the engine cache, like a compiled program's."""

    def _key(self, request: BuildRequest) -> str:
        return request.cache.key(backend=self.name, weights=request.fingerprint,
                                 shape=request.shape)

    def cached(self, request: BuildRequest) -> bool:
        return request.cache.contains(self.name, self._key(request), ".bin")

    def build(self, request: BuildRequest):
        request.cache.load_or_build(self.name, self._key(request), ".bin",
                                    lambda tmp: tmp.write_bytes(b"built"),
                                    lambda path: path.read_bytes())
        return super().build(request)


@pytest.fixture
def slow_build_backend():
    """A registered backend, first in the CPU speed order, declaring a 1000 s build."""
    cls = register_backend("test-slow-build", aliases=("tsb",), rank={"cpu": -1},
                           precisions={"cpu": ("fp32",)}, speedup={"cpu": 2.0},
                           build_seconds={"cpu": 1000.0})(type("SlowBuild", (CachedEager,), {}))
    try:
        yield cls
    finally:
        unregister_backend("test-slow-build")
    assert "test-slow-build" not in backend_names() and "tsb" not in backend_aliases()


def test_a_registered_backend_is_listed_and_picked_by_auto(slow_build_backend, tmp_path):
    assert backend_names("cpu")[0] == speed_order("cpu")[0] == "test-slow-build"
    assert "test-slow-build" in backend_help()
    assert resolve_backend_name("tsb") == "test-slow-build"
    stylizer = lite_stylizer()
    engine = InferenceEngine(stylizer, CPU, backend="auto", cache=EngineCache(root=tmp_path))
    x = image_like(*SIZE)
    y = engine(x)  # unknown length: build
    assert engine.backend == "test-slow-build"
    torch.testing.assert_close(y, reference(stylizer, x, engine.bucket), atol=1e-5, rtol=0)


def test_auto_skips_a_build_a_short_run_cannot_pay_for(slow_build_backend, tmp_path):
    cache = EngineCache(root=tmp_path)
    messages: list[str] = []
    # 3 frames: nothing on this machine pays back compile's ~30 s either, even when busy.
    engine = InferenceEngine(lite_stylizer(), CPU, backend="auto", cache=cache,
                             expected_frames=3, on_status=messages.append)
    engine(image_like(*SIZE))
    assert engine.backend == "eager" and cache.builds == 0
    assert "too short to pay for a build" in engine.skipped["test-slow-build/fp32"]
    assert any(m.startswith("auto: test-slow-build/fp32 for 160×136 skipped") and "1000 s" in m
               for m in messages)


def test_auto_builds_for_a_long_run_and_records_the_build_time(slow_build_backend, tmp_path):
    cache = EngineCache(root=tmp_path)
    engine = InferenceEngine(lite_stylizer(), CPU, backend="auto", cache=cache,
                             expected_frames=10**9)
    engine(image_like(*SIZE))
    assert engine.backend == "test-slow-build" and cache.builds == 1
    # The next decision uses the measured time, not the declared 1000 s.
    assert cache.build_seconds("test-slow-build", "cpu") < 1000


def test_auto_always_takes_a_cached_build(slow_build_backend, tmp_path):
    cache = EngineCache(root=tmp_path)
    InferenceEngine(lite_stylizer(), CPU, backend="test-slow-build", cache=cache)(
        image_like(*SIZE))
    messages: list[str] = []
    short = InferenceEngine(lite_stylizer(), CPU, backend="auto", cache=cache, expected_frames=1,
                            on_status=messages.append)
    short(image_like(*SIZE))
    assert short.backend == "test-slow-build"
    assert (cache.builds, cache.hits) == (1, 1)
    assert any("cached on disk" in m for m in messages)
    # Other weights are another build.
    InferenceEngine(lite_stylizer(seed=1), CPU, backend="test-slow-build", cache=cache)(
        image_like(*SIZE))
    assert (cache.builds, cache.hits) == (2, 1)


def test_get_backend_returns_the_registered_instance():
    assert get_backend("onnx") is get_backend("onnxruntime")
    assert get_backend("eager").name == "eager" and get_backend("eager").info.name == "eager"
