"""The GPU recipe (`rtstyle train recipe`): its time budget, and a toy run on the CPU end to end."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
from conftest import linked_folder
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.models.loading import default_arbitrary_style, load_stylizer
from rtstyle.models.training.configs import RECIPE_HOLDOUT
from rtstyle.models.training.recipe import (
    REPORT_NAME,
    Scale,
    model_names,
    publish,
    train_budgeted,
)
from rtstyle.models.training.trainer import TrainResult

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BUNDLED = ("monet", "ukiyoe", "vangogh", "cezanne", "scream", "shipwreck", "kandinsky")


def test_every_bundled_style_and_adain_are_in_the_recipe():
    assert model_names() == [*BUNDLED, "adain"]


def test_a_budgeted_model_calibrates_then_resumes_to_fill_its_share():
    calls = []
    step_s = 0.01

    def fake_train(cfg, on_step=None):
        steps, resume = cfg
        calls.append((steps, resume))
        done = calls[0][0] if resume else 0
        for step in range(done + 1, steps + 1):
            time.sleep(step_s)
            if on_step is not None:
                on_step(step, steps, {})
        return TrainResult(None, steps, {}, 0.0, "cpu", Path("."))

    scale = Scale(size=32, batch=1, adain_size=32, adain_batch=1, fixed_steps=None,
                  calibration_steps=6, eval_side=32, painting_side=64, prefetch=0)
    t0 = time.perf_counter()
    result, timing = train_budgeted(lambda steps, resume: (steps, resume), fake_train, 0.3, scale)
    wall = time.perf_counter() - t0
    assert calls[0] == (6, False) and calls[1][1] is True  # calibrate, then resume
    assert result.steps == calls[1][0] > 15  # ~0.3 s of 0.01 s steps
    assert wall < 0.3 * 1.5 and timing["s_per_step"] == pytest.approx(step_s, rel=0.5)

    fixed = Scale(**{**scale.__dict__, "fixed_steps": 2})
    calls.clear()
    result, _ = train_budgeted(lambda steps, resume: (steps, resume), fake_train, 100.0, fixed)
    assert calls == [(2, False)] and result.steps == 2


@pytest.fixture(scope="module")
def toy_recipe(shared_data, tmp_path_factory) -> tuple[Path, dict, Path]:
    """One toy run of the whole recipe on the CPU (a few photos, the shared paintings)."""
    root = tmp_path_factory.mktemp("recipe")
    photos = linked_folder(root / "photos",
                           sorted((shared_data / "content" / "train").glob("*.jpg"))[:3])
    evals = linked_folder(root / "eval",
                          sorted((shared_data / "content" / "eval").glob("*.jpg"))[:1])
    styles = shared_data / "styles"
    before = torch.get_num_threads()
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, [
        "train", "recipe", "--data", str(photos), "--styles", str(styles),
        "--out", str(root / "out"), "--toy", "--device", "cpu", "--precision", "fp32",
        "--eval-photos", str(evals), "--eval-count", "1", "--json"])
    wall = time.perf_counter() - t0
    assert torch.get_num_threads() == before  # the toy run's one thread is given back
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    report["_test_wall_s"] = wall
    return root / "out", report, styles


def test_the_toy_recipe_reports_every_model(toy_recipe):
    out, report, _ = toy_recipe
    assert json.loads((out / REPORT_NAME).read_text())["models"] == report["models"]
    assert report["recipe"] == "toy" and report["device"].startswith("cpu")
    assert [m["name"] for m in report["models"]] == [*BUNDLED, "adain"]
    for m in report["models"]:
        assert m["steps"] == 2 and m["images_seen"] == 2 * m["batch"]
        assert m["images_per_s"] > 0 and m["wall_s"] > 0
        assert m["losses"] and all(math.isfinite(v) for v in m["losses"].values())
        assert m["eval"]["mean"]["ssim"] is not None
    adain = report["models"][-1]
    assert adain["arch"] == "adain" and adain["held_out"] == list(RECIPE_HOLDOUT)
    assert len(adain["eval"]["per_painting"]) == len(RECIPE_HOLDOUT)
    assert report["wall_s"] <= report["budget_s"] and report["within_budget"]


def test_every_recipe_file_loads_through_the_registry_and_stylizes(toy_recipe, rtstyle_home):
    out, report, styles = toy_recipe
    unseen = styles / RECIPE_HOLDOUT[0]
    x = torch.rand(1, 3, 37, 53)
    for m in report["models"]:
        stylizer = load_stylizer(m["file"], style_image=unseen if m["arch"] == "adain" else None)
        with torch.no_grad():
            y = stylizer(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), m["name"]
        assert Path(m["file"]).name == f"{m['name']}.v1.safetensors"


def test_publishing_the_recipe_makes_the_plain_names_the_gpu_tier(toy_recipe, tmp_path,
                                                                  monkeypatch, rtstyle_home):
    from rtstyle.models import registry

    out, _, styles = toy_recipe
    assets = tmp_path / "assets"
    assets.mkdir()
    # the lite tier as bundled: `monet-lite`, with `monet` as its alias
    lite = registry.ASSETS_DIR / "monet-lite.v3.safetensors"
    (assets / lite.name).symlink_to(lite)
    (assets / "manifest.json").write_text(json.dumps({"format": 1, "styles": [
        {"file": lite.name, "name": "monet-lite", "tag": "v3", "default": True,
         "aliases": ["monet"]}]}))
    monkeypatch.setattr(registry, "ASSETS_DIR", assets)
    monkeypatch.setattr(registry, "MANIFEST", assets / "manifest.json")
    assert registry.resolve_style("monet").name == "monet-lite"

    published = publish(out, assets)
    assert sorted(published) == sorted(f"{n}.v1.safetensors" for n in model_names())
    assert registry.resolve_style("monet").arch == "johnson"  # the standard net now
    assert registry.resolve_style("monet-lite").arch == "johnson-lite"  # still there
    assert default_arbitrary_style().name == "adain"
    y = load_stylizer(str(styles / RECIPE_HOLDOUT[1]))(torch.rand(1, 3, 21, 30))
    assert y.shape == (1, 3, 21, 30)
