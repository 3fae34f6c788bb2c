"""The trainer's speed paths: auto precision per CPU, compile policy, the background loader,
images/s in the results, and a compiled step that agrees with the eager one (CPU, 32–48 px)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import linked_folder
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.errors import UserInputError
from rtstyle.models.registry import resolve_style
from rtstyle.models.training import common
from rtstyle.models.training.configs import COMPILE_MIN_STEPS
from rtstyle.models.training.data import PhotoBatches, Prefetcher
from rtstyle.models.training.johnson import JohnsonConfig, train_johnson
from rtstyle.models.weights import read_tensors

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photos(shared_data, tmp_path_factory) -> Path:
    return linked_folder(tmp_path_factory.mktemp("photos"),
                         sorted((shared_data / "content" / "train").glob("*.jpg"))[:4])


@pytest.fixture(scope="module")
def painting(shared_data) -> Path:
    return shared_data / "styles" / "hokusai_great_wave.jpg"


def tiny(photos, painting, folder: Path, **kw) -> JohnsonConfig:
    values = dict(style_image=painting, data=photos, name="speed-test", arch="lite", channels=4,
                  n_res=1, size=32, style_size=48, steps=2, batch=2, lr=1e-3, device="cpu",
                  precision="fp32", seed=5, sample_every=0, checkpoint_every=0,
                  work_dir=folder / "work", out=folder / "out", tensorboard=False,
                  tv_weight=0.01, content_layer="relu1_2", style_layers=("relu1_1", "relu2_1"))
    values.update(kw)
    return JohnsonConfig(**values)


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx512f", "avx512_bf16"}, "bf16"),
    ({"amx_bf16", "amx_tile"}, "bf16"),
    ({"avx2", "avx512f"}, "fp32"),
    (set(), "fp32"),
])
def test_auto_precision_is_bf16_on_cpus_with_native_bf16(monkeypatch, flags, expected):
    monkeypatch.setattr(common, "cpu_flags", lambda: frozenset(flags))
    assert common.resolve_precision("auto", CPU).name == expected
    assert common.resolve_precision("fp32", CPU).name == "fp32"
    assert common.resolve_precision("bf16", CPU).dtype == torch.bfloat16
    assert common.resolve_precision("auto", torch.device("mps")).name == "fp32"
    with pytest.raises(UserInputError, match="fp16"):
        common.resolve_precision("fp16", CPU)


def test_cpu_flags_reads_proc_cpuinfo():
    flags = common.cpu_flags()
    assert isinstance(flags, frozenset)
    if Path("/proc/cpuinfo").is_file() and "sse2" in Path("/proc/cpuinfo").read_text():
        assert "sse2" in flags


def test_compile_policy(monkeypatch):
    monkeypatch.setattr(common, "compiler_available", lambda device: True)
    assert common.resolve_compile(None, CPU, 1, COMPILE_MIN_STEPS)
    assert not common.resolve_compile(None, CPU, 1, COMPILE_MIN_STEPS - 1)  # a short run
    assert not common.resolve_compile(True, CPU, 2, 10_000)  # DDP runs eagerly
    assert common.resolve_compile(True, CPU, 1, 1) and not common.resolve_compile(False, CPU, 1, 10**6)
    monkeypatch.setattr(common, "compiler_available", lambda device: False)
    assert not common.resolve_compile(None, CPU, 1, 10**6)


def test_prefetcher_yields_the_synchronous_batches_and_their_state(photos):
    sync = PhotoBatches(photos, 32, 2, seed=1)
    expected, states = [], []
    for _ in range(4):
        expected.append(next(sync))
        states.append(sync.get_state())
    generator = torch.Generator().manual_seed(1)
    ahead = Prefetcher(PhotoBatches(photos, 32, 2, generator=generator), generator, depth=3)
    try:
        for i in range(2):
            assert torch.equal(next(ahead), expected[i])
            # the state after the batches handed out, not after those already queued
            assert torch.equal(ahead.get_state(), states[i])
    finally:
        ahead.close()
    # a resume from that state continues the same sequence
    resumed_gen = torch.Generator()
    resumed = Prefetcher(PhotoBatches(photos, 32, 2, generator=resumed_gen), resumed_gen)
    resumed.set_state(states[1])
    try:
        assert torch.equal(next(resumed), expected[2]) and torch.equal(next(resumed), expected[3])
    finally:
        resumed.close()


def test_prefetcher_hands_a_loader_error_to_the_training_thread():
    def broken():
        yield torch.zeros(1)
        raise OSError("unreadable photo")

    stream = Prefetcher(broken(), torch.Generator())
    assert torch.equal(next(stream), torch.zeros(1))
    with pytest.raises(OSError, match="unreadable"):
        next(stream)


def close_weights(a: dict, b: dict) -> bool:
    """Equal up to rounding, and up to the few weights whose gradient is rounding noise around
    zero (a bias before instance norm), which Adam's first steps move by ±lr either way."""
    diffs = torch.cat([(a[k].float() - b[k].float()).abs().flatten() for k in a])
    return a.keys() == b.keys() and float((diffs > 1e-3).float().mean()) < 0.01


def test_prefetching_trains_the_old_weights_exactly_and_channels_last_closely(photos, painting,
                                                                               tmp_path):
    old = train_johnson(tiny(photos, painting, tmp_path / "old", prefetch=0,
                             channels_last=False, compile=False))
    ahead = train_johnson(tiny(photos, painting, tmp_path / "ahead", prefetch=2,
                               channels_last=False, compile=False))
    new = train_johnson(tiny(photos, painting, tmp_path / "new", prefetch=2,
                             channels_last=True, compile=False))
    assert old.speed == {"compile": False, "channels_last": False, "prefetch": 0}
    assert new.speed == {"compile": False, "channels_last": True, "prefetch": 2}
    a, b, c = (read_tensors(r.style_path) for r in (old, ahead, new))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert close_weights(a, c)
    assert new.images_per_s and new.images_per_s > 0


def test_cli_json_and_style_metadata_report_images_per_s(photos, painting, tmp_path,
                                                        rtstyle_home):
    result = CliRunner().invoke(app, [
        "train", "johnson", "--style-image", str(painting), "--data", str(photos),
        "--name", "speed-cli", "--size", "32", "--steps", "3", "--batch", "2", "--channels", "4",
        "--n-res", "1", "--device", "cpu", "--sample-every", "0", "--no-compile",
        "--precision", "fp32", "--prefetch", "1", "--work-dir", str(tmp_path / "work"), "--json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images_per_s"] > 0
    assert summary["speed"] == {"compile": False, "channels_last": True, "prefetch": 1}
    training = resolve_style("speed-cli").meta["training"]
    assert training["images_per_s"] > 0 and training["speed"]["prefetch"] == 1


@pytest.mark.slow
@pytest.mark.skipif(not common.compiler_available(CPU), reason="no C++ compiler for Inductor")
def test_compiled_steps_agree_with_eager_steps(photos, painting, tmp_path):
    """Same seed, two steps: the losses match, and so do the updated weights."""
    runs = {}
    for compiled in (False, True):
        seen: list[dict] = []
        result = train_johnson(tiny(photos, painting, tmp_path / str(compiled), compile=compiled),
                               lambda step, total, losses, seen=seen: seen.append(losses))
        assert result.speed["compile"] is compiled
        runs[compiled] = seen, read_tensors(result.style_path)
    (eager_losses, eager_w), (comp_losses, comp_w) = runs[False], runs[True]
    for e, c in zip(eager_losses, comp_losses, strict=True):
        for key in e:
            assert c[key] == pytest.approx(e[key], rel=1e-4, abs=1e-7), key
    assert close_weights(eager_w, comp_w)
