"""The shared trainer skeleton: every architecture resumes bit-exactly; old checkpoints refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import photos_and_paintings

from rtstyle.errors import UserInputError
from rtstyle.models.training.cyclegan import CycleGANConfig, train_cyclegan
from rtstyle.models.training.sanet import SANetConfig, train_sanet
from rtstyle.models.weights import read_tensors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def domains(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    return photos_and_paintings(shared_data, tmp_path_factory.mktemp("domains"), photos=4)


def _cyclegan(domains, folder: Path, **kw) -> CycleGANConfig:
    a, b = domains
    values = dict(domain_a=a, domain_b=b, name="gan", ngf=4, n_blocks=1, ndf=4, size=32,
                  steps=4, pool_size=2, device="cpu", precision="fp32", sample_every=0,
                  checkpoint_every=2, work_dir=folder / "work", out=folder / "out",
                  tensorboard=False)
    return CycleGANConfig(**{**values, **kw})


def _sanet(domains, folder: Path, **kw) -> SANetConfig:
    a, b = domains
    values = dict(content=a, styles=b, name="san", size=32, steps=3, batch=1, device="cpu",
                  precision="fp32", sample_every=0, checkpoint_every=0, work_dir=folder / "work",
                  out=folder / "out", tensorboard=False)
    return SANetConfig(**{**values, **kw})


@pytest.mark.parametrize(("make", "train", "split"), [
    (_cyclegan, train_cyclegan, 2),  # after the history pools are full: they are resumed too
    (_sanet, train_sanet, 1),
])
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(domains, tmp_path, make, train,
                                                              split):
    straight = train(make(domains, tmp_path / "a"))
    train(make(domains, tmp_path / "b", steps=split))
    seen = []
    resumed = train(make(domains, tmp_path / "b", resume=True),
                    lambda step, total, losses: seen.append(step))
    assert seen == list(range(split + 1, straight.steps + 1))
    a, b = read_tensors(straight.style_path), read_tensors(resumed.style_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_another_layout_is_refused_clearly(domains, tmp_path):
    cfg = _sanet(domains, tmp_path, steps=1)
    train_sanet(cfg)
    path = tmp_path / "work" / "checkpoint.pt"
    saved = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in saved.items() if k != "format"}, path)
    with pytest.raises(UserInputError, match="older rtstyle"):
        train_sanet(_sanet(domains, tmp_path, steps=2, resume=True))
