"""Johnson/lite trainer: losses, resume, reproducibility, export through the registry (CPU, 64 px)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import linked_folder
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.errors import UserInputError
from rtstyle.models.loading import load_stylizer
from rtstyle.models.registry import resolve_style
from rtstyle.models.training.common import schedule_lr
from rtstyle.models.training.data import PhotoBatches, load_style_image
from rtstyle.models.training.gatys import gatys_stylize
from rtstyle.models.training.johnson import JohnsonConfig, train_johnson
from rtstyle.models.training.losses import PerceptualLoss, gram_matrix, ssim, style_loss, tv_loss
from rtstyle.models.weights import read_tensors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos(shared_data, tmp_path_factory) -> Path:
    """Six shared training photos linked into a folder of their own."""
    return linked_folder(tmp_path_factory.mktemp("photos"),
                         sorted((shared_data / "content" / "train").glob("*.jpg"))[:6])


@pytest.fixture(scope="module")
def painting(shared_data) -> Path:
    return shared_data / "styles" / "hokusai_great_wave.jpg"


def tiny_config(photos, painting, tmp_path, **kw) -> JohnsonConfig:
    values = dict(style_image=painting, data=photos, name="wave-test", arch="lite", channels=8,
                  n_res=1, size=64, style_size=96, steps=4, batch=2, lr=1e-2, device="cpu",
                  precision="fp32", seed=3, sample_every=0, checkpoint_every=2,
                  work_dir=tmp_path / "work", out=tmp_path / "out", tensorboard=False,
                  tv_weight=0.01)
    values.update(kw)
    return JohnsonConfig(**values)


def run(cfg: JohnsonConfig):
    seen: list[tuple[int, dict]] = []
    result = train_johnson(cfg, lambda step, total, losses: seen.append((step, losses)))
    return result, seen


def test_gram_matrix_is_size_independent_and_style_loss_zero_on_itself():
    torch.manual_seed(0)
    feat = torch.rand(1, 5, 8, 8)
    tiled = feat.repeat(1, 1, 2, 2)
    torch.testing.assert_close(gram_matrix(feat), gram_matrix(tiled))
    assert float(style_loss({"a": feat}, {"a": gram_matrix(feat)})) == 0.0
    assert float(tv_loss(torch.ones(1, 3, 9, 7))) == 0.0
    assert float(tv_loss(torch.rand(1, 3, 9, 7))) > 0.0


def test_photo_batches_are_seeded_crops(photos):
    a = next(PhotoBatches(photos, 48, 3, seed=1))
    b = next(PhotoBatches(photos, 48, 3, seed=1))
    c = next(PhotoBatches(photos, 48, 3, seed=2))
    assert a.shape == (3, 3, 48, 48) and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_losses_finite_and_total_decreases(photos, painting, tmp_path):
    result, seen = run(tiny_config(photos, painting, tmp_path, steps=24, sample_every=12))
    assert [s for s, _ in seen] == list(range(1, 25))
    for _, losses in seen:
        assert set(losses) == {"content", "style", "tv", "total"}
        assert all(math.isfinite(v) for v in losses.values())
    totals = [losses["total"] for _, losses in seen]
    assert sum(totals[-5:]) / 5 < 0.92 * sum(totals[:5]) / 5
    assert (result.work_dir / "samples" / "step000012.png").is_file()
    assert result.style_path.name == "wave-test.v1.safetensors"


def test_seed_reproduces_and_resume_continues_at_saved_step(photos, painting, tmp_path):
    straight, _ = run(tiny_config(photos, painting, tmp_path / "a"))
    again, _ = run(tiny_config(photos, painting, tmp_path / "b"))
    other, _ = run(tiny_config(photos, painting, tmp_path / "c", seed=4))
    half, _ = run(tiny_config(photos, painting, tmp_path / "d", steps=2))
    resumed, seen = run(tiny_config(photos, painting, tmp_path / "d", resume=True))

    weights = [read_tensors(r.style_path) for r in (straight, again, other, resumed)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert half.steps == 2 and [s for s, _ in seen] == [3, 4]
    assert all(torch.equal(weights[0][k], weights[3][k]) for k in weights[0])


def test_lr_decay_follows_its_schedule_and_may_be_added_on_resume(photos, painting, tmp_path):
    """`--lr-decay-from`: constant LR until that step, then linearly towards 0 at --steps;
    a run may take it on at --resume (like the step budget) and then ends as one that had it
    from the start; it is recorded in the style file."""
    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    seen = []
    for step in range(1, 6):
        schedule_lr(optimizer, 0.1, 5, 2, step)
        seen.append(round(optimizer.param_groups[0]["lr"], 6))
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.1 * 2 / 3, 0.1 / 3], abs=1e-6)
    schedule_lr(optimizer, 0.1, 5, None, 5)  # no decay asked: the optimizer is left alone
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 3)

    decayed, _ = run(tiny_config(photos, painting, tmp_path / "a", lr_decay_from=2))
    constant, _ = run(tiny_config(photos, painting, tmp_path / "b"))
    run(tiny_config(photos, painting, tmp_path / "c", steps=2))
    resumed, seen = run(tiny_config(photos, painting, tmp_path / "c", resume=True,
                                    lr_decay_from=2))
    a, b, c = (read_tensors(r.style_path) for r in (decayed, constant, resumed))
    assert [s for s, _ in seen] == [3, 4]
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert resolve_style(str(resumed.style_path)).meta["training"]["lr_decay_from"] == 2
    with pytest.raises(UserInputError, match="--lr-decay-from must be a step"):
        train_johnson(tiny_config(photos, painting, tmp_path / "d", lr_decay_from=-1))


def test_checkpoint_is_plain_data_and_resume_refuses_other_settings(photos, painting, tmp_path):
    result, _ = run(tiny_config(photos, painting, tmp_path, steps=1))
    saved = torch.load(result.work_dir / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 1
    with pytest.raises(UserInputError, match="size"):
        train_johnson(tiny_config(photos, painting, tmp_path, steps=2, size=72, resume=True))


def test_trained_style_loads_through_registry_and_stylizes(photos, painting, tmp_path,
                                                             rtstyle_home):
    result, _ = run(tiny_config(photos, painting, tmp_path, steps=2, out=None,
                                temporal_weight=0.5))
    assert result.style_path.parent == rtstyle_home / "styles"
    spec = resolve_style("wave-test")
    assert spec.arch == "johnson-lite" and spec.origin == "user"
    meta = spec.meta
    assert meta["style"]["image"] == "hokusai_great_wave.jpg"
    assert meta["training"]["steps"] == 2 and meta["training"]["size"] == 64
    assert set(meta["training"]["final_losses"]) == {"content", "style", "tv", "temporal", "total"}
    assert meta["training"]["temporal_weight"] == 0.5
    assert all(v.dtype == torch.float16 for v in read_tensors(result.style_path).values())
    stylizer = load_stylizer("wave-test")
    x = torch.rand(1, 3, 41, 67)
    y = stylizer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_init_from_fine_tunes_an_existing_style_and_refuses_another_arch(photos, painting,
                                                                        tmp_path):
    base, _ = run(tiny_config(photos, painting, tmp_path / "base", steps=3))
    start = tiny_config(photos, painting, tmp_path / "ft", steps=1, lr=1e-12,
                        init_from=str(base.style_path), name="wave-ft")
    tuned, _ = run(start)
    base_w, tuned_w = read_tensors(base.style_path), read_tensors(tuned.style_path)
    # a vanishing learning rate leaves the loaded weights as they were (FP16 file round trip)
    assert all(torch.allclose(base_w[k].float(), tuned_w[k].float(), atol=1e-3) for k in base_w)
    assert resolve_style(str(tuned.style_path)).meta["training"]["init_from"] == str(base.style_path)
    fresh, _ = run(tiny_config(photos, painting, tmp_path / "fresh", steps=1, lr=1e-12))
    assert not all(torch.allclose(base_w[k].float(), read_tensors(fresh.style_path)[k].float(),
                                  atol=1e-3) for k in base_w)
    with pytest.raises(UserInputError, match="--init-from"):
        train_johnson(tiny_config(photos, painting, tmp_path / "wide", channels=16,
                                  init_from=str(base.style_path)))


def test_cli_train_johnson_json(photos, painting, tmp_path, rtstyle_home):
    result = CliRunner().invoke(app, [
        "train", "johnson", "--style-image", str(painting), "--data", str(photos),
        "--name", "cli-wave", "--size", "64", "--steps", "2", "--batch", "1", "--channels", "4",
        "--n-res", "1", "--device", "cpu", "--sample-every", "0",
        "--work-dir", str(tmp_path / "work"), "--json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2 and summary["style"].endswith("cli-wave.v1.safetensors")
    assert resolve_style("cli-wave").arch == "johnson-lite"


def test_cli_train_logs_plain_progress_lines_when_not_on_a_terminal(photos, painting, tmp_path,
                                                                    rtstyle_home):
    """`nohup rtstyle train … > log.txt`: rich draws nothing into a file, so the log must get
    plain lines with the step and the losses (the last step always)."""
    result = CliRunner().invoke(app, [
        "train", "johnson", "--style-image", str(painting), "--data", str(photos),
        "--name", "cli-log", "--size", "64", "--steps", "2", "--batch", "1", "--channels", "4",
        "--n-res", "1", "--device", "cpu", "--sample-every", "0",
        "--work-dir", str(tmp_path / "work"),
    ])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stderr.splitlines() if "step 2/2" in x)
    assert line.startswith("train cli-log step 2/2") and "total=" in line


def test_cli_train_johnson_bad_input_exits_2(photos, tmp_path):
    result = CliRunner().invoke(app, [
        "train", "johnson", "--style-image", str(tmp_path / "missing.jpg"),
        "--data", str(photos), "--name", "x", "--device", "cpu",
    ])
    assert result.exit_code == 2, result.output
    assert "style image not found" in result.output


def test_content_layer_is_an_option_that_changes_what_is_learned(photos, painting, tmp_path):
    deep, _ = run(tiny_config(photos, painting, tmp_path / "deep", steps=2,
                              content_layer="relu4_1"))
    shallow, _ = run(tiny_config(photos, painting, tmp_path / "shallow", steps=2))
    assert resolve_style(str(deep.style_path)).meta["training"]["content_layer"] == "relu4_1"
    a, b = read_tensors(deep.style_path), read_tensors(shallow.style_path)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_cli_train_refuses_an_unknown_content_layer(photos, painting, tmp_path):
    result = CliRunner().invoke(app, [
        "train", "johnson", "--style-image", str(painting), "--data", str(photos),
        "--name", "x", "--device", "cpu", "--content-layer", "relu9_9",
        "--work-dir", str(tmp_path / "work"),
    ])
    assert result.exit_code == 2, result.output
    assert "unknown --content-layer 'relu9_9'" in result.output and "relu4_1" in result.output


def test_ssim_is_one_on_itself_and_low_on_noise():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 41, 67)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(x, torch.rand(1, 3, 41, 67))) < 0.2


def test_gatys_lowers_the_perceptual_loss(shared_data, painting):
    from rtstyle.models.vgg import load_vgg19

    photo = next(PhotoBatches(shared_data / "content" / "train", 32, 1, seed=0))
    criterion = PerceptualLoss(load_vgg19(), load_style_image(painting, 48))
    before = float(criterion(photo, photo)["total"])
    after = float(criterion(gatys_stylize(photo, criterion, steps=5), photo)["total"])
    assert after < before


def test_publish_writes_manifest_entry_with_alias_and_small_gallery(photos, painting, tmp_path,
                                                                     shared_data):
    from rtstyle.models.training.bundled import publish
    from rtstyle.models.weights import sha256_file

    run(tiny_config(photos, painting, tmp_path, steps=1, name="ukiyoe-lite"))
    assets = tmp_path / "assets"
    assets.mkdir()
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    publish(tmp_path / "out", shared_data / "styles", photo, assets, ["ukiyoe"], tag="v1")
    (entry,) = json.loads((assets / "manifest.json").read_text())["styles"]
    assert entry["name"] == "ukiyoe-lite" and entry["aliases"] == ["ukiyoe"] and entry["default"]
    assert entry["sha256"] == sha256_file(assets / entry["file"])
    assert 0 < (assets / entry["gallery"]).stat().st_size < 100_000

    # a newer tag takes the default and the alias; the older file stays, by its full name
    run(tiny_config(photos, painting, tmp_path, steps=1, name="ukiyoe-lite", tag="v2"))
    publish(tmp_path / "out", shared_data / "styles", photo, assets, ["ukiyoe"], tag="v2")
    v1, v2 = json.loads((assets / "manifest.json").read_text())["styles"]
    assert (v1["file"], v1["default"], v1["aliases"]) == ("ukiyoe-lite.v1.safetensors", False, [])
    assert (v2["file"], v2["default"], v2["aliases"]) == ("ukiyoe-lite.v2.safetensors", True,
                                                          ["ukiyoe"])
    assert (assets / v1["file"]).is_file() and (assets / v2["gallery"]).is_file()


def test_bundled_recipe_stage_two_fine_tunes_stage_one_with_temporal_and_style_terms(tmp_path):
    from rtstyle.models.training.bundled import PAINTINGS, TEMPORAL_RECIPE, painting_config

    def stages(style):
        painting = next(p for p in PAINTINGS if p.style == style)
        args = (tmp_path, tmp_path, tmp_path / "out", tmp_path / "work", {})
        return (painting, painting_config(painting, *args),
                painting_config(painting, *args, finetune_from=tmp_path / "assets"))

    _, stage1, stage2 = stages("ukiyoe")  # the shared stage-two values
    assert stage1.temporal_weight == 0 and stage1.init_from is None and stage1.tag == "v1"
    assert stage2.temporal_weight == TEMPORAL_RECIPE["temporal_weight"] > 0
    assert stage2.init_from == str(tmp_path / "assets" / "ukiyoe-lite.v1.safetensors")
    assert stage2.tag == "v3" and stage2.work_dir != stage1.work_dir
    # the temporal term takes texture away; a stronger style term gives it back
    assert stage2.style_weight == TEMPORAL_RECIPE["style_weight_factor"] * stage1.style_weight
    assert stage2.steps == TEMPORAL_RECIPE["steps"]

    monet, stage1, stage2 = stages("monet")  # a painting with its own stage-two values
    assert stage2.temporal_weight == monet.stage_two["temporal_weight"] != stage1.temporal_weight
    assert stage2.style_weight == monet.stage_two["style_weight_factor"] * stage1.style_weight
    assert stage2.steps == monet.stage_two["steps"] != TEMPORAL_RECIPE["steps"]
