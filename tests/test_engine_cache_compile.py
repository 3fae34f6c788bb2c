"""Compiled programs on disk: a second engine loads the AOTInductor package instead of building.

Real Inductor builds of the lite net at a tiny size (each ~half a minute on 2 cores), so the
build is made once per module and copied where a test needs its own cache.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from test_backend_registry import lite_stylizer
from test_engine import image_like, reference

from rtstyle.realtime.backends import BuildRequest, get_backend
from rtstyle.realtime.cache import EngineCache, module_fingerprint
from rtstyle.realtime.engine import InferenceEngine, relative_error

CPU = torch.device("cpu")
SIZE = (136, 160)  # over auto's 128×128 thumbnail rule
reason = get_backend("compile").unavailable_reason(CPU)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(reason is not None, reason=reason or "")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One cold build through `auto` with an unknown length (which builds), and its output.

    Warmed up under inference_mode, as a run does (`StyledRun.warm_up`)."""
    root = tmp_path_factory.mktemp("engines")
    cache = EngineCache(root=root)
    engine = InferenceEngine(lite_stylizer(), CPU, backend="auto", cache=cache)
    with torch.inference_mode():
        engine.warmup(image_like(*SIZE))
    y = engine(image_like(*SIZE))
    return root, cache, engine, y


def copied(built, tmp_path) -> EngineCache:
    root = tmp_path / "engines"
    shutil.copytree(built[0], root)
    return EngineCache(root=root)


def test_unknown_length_builds_one_package_and_times_it(built):
    root, cache, engine, y = built
    assert engine.backend == "compile" and (cache.builds, cache.hits) == (1, 0)
    assert len(list((root / "compile").glob("*.pt2"))) == 1
    assert not list((root / "compile").glob(".*"))  # no temp files left
    assert cache.build_seconds("compile", "cpu") > 0
    ref = reference(lite_stylizer(), image_like(*SIZE), engine.bucket)
    assert relative_error(y, ref) < engine.guard_threshold


def test_second_engine_loads_the_package_even_for_a_short_run(built, tmp_path):
    cache = copied(built, tmp_path)
    messages: list[str] = []
    engine = InferenceEngine(lite_stylizer(), CPU, backend="auto", cache=cache,
                             expected_frames=3, on_status=messages.append)
    y = engine(image_like(*SIZE))
    assert engine.backend == "compile" and engine.precision == built[2].precision
    assert (cache.builds, cache.hits) == (0, 1)
    assert any("cached on disk" in m for m in messages)
    torch.testing.assert_close(y, built[3], atol=1e-6, rtol=0)


def test_other_weights_or_shape_miss(built):
    root, cache, engine, _ = built
    backend = get_backend("compile")
    shape = engine.bucket_shape((1, 3, *SIZE))

    def request(stylizer, shape):
        return BuildRequest(stylizer, CPU, engine.dtype, shape, cache,
                            module_fingerprint(stylizer))

    assert backend.cached(request(lite_stylizer(), shape))
    assert not backend.cached(request(lite_stylizer(seed=1), shape))
    assert not backend.cached(request(lite_stylizer(), (1, 3, shape[2] + 8, shape[3])))
    assert not backend.cached(BuildRequest(lite_stylizer(), CPU, torch.float32, shape, cache,
                                           module_fingerprint(lite_stylizer())))
    # A short run at a size that is not cached stays eager and builds nothing.
    short = InferenceEngine(lite_stylizer(), CPU, backend="auto", cache=cache, expected_frames=3)
    short(image_like(SIZE[0] + 8, SIZE[1]))
    assert short.backend == "eager" and cache.builds == 1


def test_a_corrupt_package_is_rebuilt_not_crashed_on(built, tmp_path):
    cache = copied(built, tmp_path)
    (package,) = (tmp_path / "engines" / "compile").glob("*.pt2")
    package.write_bytes(b"not a zip archive" * 64)
    engine = InferenceEngine(lite_stylizer(), CPU, backend="compile", cache=cache)
    y = engine(image_like(*SIZE))
    assert (cache.rejected, cache.builds, cache.hits) == (1, 1, 0)
    assert package.stat().st_size > 10_000
    torch.testing.assert_close(y, built[3], atol=1e-6, rtol=0)
