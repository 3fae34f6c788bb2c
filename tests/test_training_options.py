"""`rtstyle train` options come from the trainers' config dataclasses: one default, one place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.cli.train import train_app
from rtstyle.models.training.configs import (
    AdaINConfig,
    CycleGANConfig,
    JohnsonConfig,
    MultiStyleConfig,
    RecipeConfig,
    SANetConfig,
)

CONFIGS = {"johnson": JohnsonConfig, "cyclegan": CycleGANConfig, "sanet": SANetConfig,
           "multi": MultiStyleConfig, "adain": AdaINConfig, "recipe": RecipeConfig}
VERB_OWN = {"as_json"}  # options of the verb itself, not of the trainer


def _commands() -> dict:
    return typer.main.get_command(train_app).commands


def test_every_train_verb_has_a_config():
    assert set(_commands()) == set(CONFIGS)


@pytest.mark.parametrize("verb", sorted(CONFIGS))
def test_each_option_default_and_help_is_the_config_fields(verb):
    fields = {f.name: f for f in dataclasses.fields(CONFIGS[verb])}
    options = [p for p in _commands()[verb].params if p.name not in VERB_OWN]
    assert {p.name for p in options} == {n for n, f in fields.items() if f.metadata.get("help")}
    for param in options:
        f = fields[param.name]
        assert param.help == f.metadata["help"], param.name
        if f.default is not dataclasses.MISSING:
            assert not param.required and param.default == f.default, param.name
            assert type(param.default) is type(f.default), param.name
        elif f.default_factory is not dataclasses.MISSING:
            # None on the command line; `config_verb` then gives the field its factory
            assert not param.required and param.default is None, param.name
        else:
            assert param.required, param.name


def test_johnson_style_weight_default_is_what_the_cli_always_used():
    # README "Training": "the default `--style-weight 0.25`"; the CLI had 0.25, the config 2.0.
    assert JohnsonConfig.__dataclass_fields__["style_weight"].default == 0.25


class _Captured(Exception):
    pass


@pytest.mark.parametrize(("verb", "module", "func", "args", "expected"), [
    ("johnson", "johnson", "train_johnson",
     ["--style-image", "p.jpg", "--data", "photos", "--name", "x"],
     JohnsonConfig(style_image=Path("p.jpg"), data=Path("photos"), name="x")),
    ("cyclegan", "cyclegan", "train_cyclegan",
     ["--domain-a", "a", "--domain-b", "b", "--name", "x", "--checkpoint-every", "7"],
     CycleGANConfig(domain_a=Path("a"), domain_b=Path("b"), name="x", checkpoint_every=7)),
    ("multi", "multistyle", "train_multistyle",
     ["--style-image", "a.jpg", "--style-image", "b.jpg", "--names", "a,b", "--data", "photos"],
     MultiStyleConfig(style_image=[Path("a.jpg"), Path("b.jpg")], names="a,b",
                      data=Path("photos"))),
    ("sanet", "sanet", "train_sanet", ["--content", "c", "--styles", "s"],
     SANetConfig(content=Path("c"), styles=Path("s"))),
    ("sanet", "sanet", "train_sanet",
     ["--content", "c", "--styles", "s", "--holdout", "a.jpg", "--holdout", "b.jpg", "-d", "cpu"],
     SANetConfig(content=Path("c"), styles=Path("s"), holdout=["a.jpg", "b.jpg"], device="cpu")),
])
def test_the_verb_hands_the_trainer_exactly_the_config(monkeypatch, verb, module, func, args,
                                                       expected):
    import importlib

    seen = []

    def fake_train(cfg, on_step=None):
        seen.append(cfg)
        raise _Captured

    monkeypatch.setattr(importlib.import_module(f"rtstyle.models.training.{module}"), func,
                        fake_train)
    result = CliRunner().invoke(app, ["train", verb, *args])
    assert isinstance(result.exception, _Captured), result.output
    assert seen == [expected]


def test_training_modules_write_no_input_range():
    """Ranges come from the architecture registry (`ArchInfo.value_range`), not from literals."""
    folder = Path(__file__).resolve().parents[1] / "rtstyle" / "models" / "training"
    for path in folder.glob("*.py"):
        text = path.read_text()
        for literal in ('"0_255"', '"-1_1"', '"0_1"'):
            assert literal not in text, f"{path.name} writes {literal}"
