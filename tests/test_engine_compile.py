"""Compiled backend on CPU: one small shape, because Inductor takes ~half a minute on 2 cores."""

from __future__ import annotations

import pytest
import torch
from test_engine import image_like, reference, tiny_stylizer

from rtstyle.realtime.backends import get_backend
from rtstyle.realtime.cache import EngineCache
from rtstyle.realtime.engine import InferenceEngine, relative_error

CPU = torch.device("cpu")
reason = get_backend("compile").unavailable_reason(CPU)


@pytest.mark.slow
@pytest.mark.skipif(reason is not None, reason=reason or "")
def test_compile_agrees_with_fp32_eager_on_odd_sizes_and_reuses_its_bucket(tmp_path):
    stylizer = tiny_stylizer()
    engine = InferenceEngine(stylizer, CPU, backend="compile", cache=EngineCache(root=tmp_path))
    x = image_like(41, 67)
    y = engine(x)
    assert engine.backend == "compile" and engine.builds == 1
    ref = reference(stylizer, x, engine.bucket)
    if engine.precision == "fp32":
        torch.testing.assert_close(y, ref, atol=1e-4, rtol=0)
    else:  # bf16 on CPUs with AMX / AVX-512-BF16
        assert relative_error(y, ref) < engine.guard_threshold
        assert (y - ref).abs().max() < 0.05
    x2 = image_like(45, 70, seed=1)  # same 80×48 bucket: no second compilation
    assert engine(x2).shape == (1, 3, 45, 70)
    assert engine.builds == 1
