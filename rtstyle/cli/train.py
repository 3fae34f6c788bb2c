"""`rtstyle train`: train your own style.

Each verb's options are its trainer's config dataclass (`rtstyle.models.training.configs`): every
field with a `help` is an option with that help and the field's default, so a default lives in
one place (cf. transformers' `HfArgumentParser`, options from `field(metadata={"help": ...})`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import os
import time
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from ..models.training.configs import (
    AdaINConfig,
    CycleGANConfig,
    JohnsonConfig,
    MultiStyleConfig,
    RecipeConfig,
    RunSettings,
    SANetConfig,
)
from .common import JsonOption, err, out, user_errors

# Seconds between the plain progress lines of a run whose stderr is not a terminal.
LOG_EVERY_S = 30.0

train_app = typer.Typer(help="Train your own style (Johnson/lite, CycleGAN, SANet, AdaIN).",
                        no_args_is_help=True)


@contextlib.contextmanager
def _training_progress(name: str, quiet: bool, images_per_step: int = 0):
    """A bar with each loss term, it/s (and images/s when `images_per_step` is known) and ETA;
    yields the trainer's step callback."""
    # Redirected to a file (`nohup … > log.txt`), rich draws nothing until the end: print a
    # plain line every LOG_EVERY_S instead, so a background run's log shows where it is.
    plain = not quiet and not err.is_terminal
    progress = Progress(
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or plain,
    )
    task = progress.add_task(name, total=None, losses="", rate="")
    last_line = [time.monotonic()]

    def on_step(step: int, total: int, losses: dict[str, float]) -> None:
        speed = progress.tasks[task].speed
        rate = f"{speed:.2f} it/s" if speed else ""
        if speed and images_per_step:
            rate += f" {speed * images_per_step:.1f} img/s"
        terms = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        progress.update(task, completed=step, total=total, losses=terms, rate=rate)
        now = time.monotonic()
        if plain and (now - last_line[0] >= LOG_EVERY_S or step == total):
            last_line[0] = now
            err.print(f"{name} step {step}/{total} {terms} {rate}".rstrip(),
                      highlight=False, soft_wrap=True)

    with progress:
        yield on_step


def _training_summary(result, as_json: bool) -> None:
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 exported and reports
        return
    summary = {"style": str(result.style_path) if result.style_path else None,
               "steps": result.steps, "losses": result.losses,
               "duration_s": round(result.duration_s, 1), "device": result.device,
               "images_per_s": (round(result.images_per_s, 2) if result.images_per_s
                                else None),
               "speed": result.speed,
               "world_size": result.world_size, "work_dir": str(result.work_dir)}
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        rate = f", {summary['images_per_s']} images/s" if summary["images_per_s"] else ""
        err.print(f"wrote {summary['style']} after {result.steps} steps "
                  f"({summary['duration_s']} s on {result.device}{rate})", highlight=False)


def config_options(config_cls: type) -> list[inspect.Parameter]:
    """One keyword-only Typer option per field of `config_cls` that has a `help`.

    The verb's own fields come first, the shared `RunSettings` after them (as `--help` lists
    them). A field with a default factory (a list) defaults to None here and gets its factory.
    """
    hints = typing.get_type_hints(config_cls)
    shared = {f.name for f in dataclasses.fields(RunSettings)}
    fields = sorted((f for f in dataclasses.fields(config_cls) if f.metadata.get("help")),
                    key=lambda f: f.name in shared)
    params = []
    for f in fields:
        annotation = hints[f.name]
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default, annotation = None, annotation | None
        else:
            default = inspect.Parameter.empty
        option = typer.Option(*f.metadata.get("flags", ()), help=f.metadata["help"])
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[annotation, option]))
    return params


def config_verb(config_cls: type) -> Callable:
    """Give a verb `config_options(config_cls)` before its own options; it receives the config.

    The decorated function takes the built config first, then its own keyword-only options.
    """

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
        own_names = {p.name for p in own}
        factories = {f.name for f in dataclasses.fields(config_cls)
                     if f.default_factory is not dataclasses.MISSING}

        @functools.wraps(fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"),
                         updated=())
        def verb(**kwargs: Any) -> None:
            mine = {k: kwargs.pop(k) for k in own_names}
            values = {k: v for k, v in kwargs.items() if not (k in factories and v is None)}
            fn(config_cls(**values), **mine)

        verb.__signature__ = inspect.Signature(config_options(config_cls) + own)
        return verb

    return decorate


def _train(run: Callable, cfg, as_json: bool) -> None:
    images = getattr(cfg, "batch", 0) * int(os.environ.get("WORLD_SIZE", "1"))
    with user_errors(), _training_progress(f"train {cfg.name}", as_json, images) as on_step:
        result = run(cfg, on_step)
    _training_summary(result, as_json)


@train_app.command("johnson")
@config_verb(JohnsonConfig)
def train_johnson_verb(cfg: JohnsonConfig, *, as_json: JsonOption = False) -> None:
    """Train a feed-forward net for one painting (perceptual losses on VGG-19)."""
    from ..models.training.johnson import train_johnson

    _train(train_johnson, cfg, as_json)


@train_app.command("multi")
@config_verb(MultiStyleConfig)
def train_multi_verb(cfg: MultiStyleConfig, *, as_json: JsonOption = False) -> None:
    """Train one mid net on several paintings (conditional instance norm); each style is
    then used by its own name, and switching between them needs no reload."""
    from ..models.training.multistyle import train_multistyle

    _train(train_multistyle, cfg, as_json)


@train_app.command("cyclegan")
@config_verb(CycleGANConfig)
def train_cyclegan_verb(cfg: CycleGANConfig, *, as_json: JsonOption = False) -> None:
    """Train an unpaired photo→painting CycleGAN and register its A→B generator."""
    from ..models.training.cyclegan import train_cyclegan

    _train(train_cyclegan, cfg, as_json)


@train_app.command("sanet")
@config_verb(SANetConfig)
def train_sanet_verb(cfg: SANetConfig, *, as_json: JsonOption = False) -> None:
    """Train a SANet arbitrary-style model (content, style and identity losses)."""
    from ..models.training.sanet import train_sanet

    _train(train_sanet, cfg, as_json)


@train_app.command("adain")
@config_verb(AdaINConfig)
def train_adain_verb(cfg: AdaINConfig, *, as_json: JsonOption = False) -> None:
    """Train an AdaIN arbitrary-style decoder (any painting as --style afterwards)."""
    from ..models.training.adain import train_adain

    _train(train_adain, cfg, as_json)


@train_app.command("recipe")
@config_verb(RecipeConfig)
def train_recipe_verb(cfg: RecipeConfig, *, as_json: JsonOption = False) -> None:
    """The GPU tier in one budget: standard nets of the 7 bundled styles + the AdaIN model.

    Writes NAME.TAG.safetensors per model and recipe_report.json into --out. --toy runs it on
    tiny crops for 2 steps per model (CPU, CI).
    """
    import functools

    from ..devices import resolve_device
    from ..metrics.quality import style_file_scores
    from ..models.training.recipe import GPU_SCALE, REPORT_NAME, TOY_SCALE, run_recipe

    scale = TOY_SCALE if cfg.toy else GPU_SCALE

    def on_model(entry: dict) -> None:
        if not as_json:
            err.print(f"{entry['name']}: {entry['steps']} steps, {entry['images_seen']} images, "
                      f"{entry['images_per_s']} images/s, {entry['wall_s']} s", highlight=False)

    with user_errors():
        evaluate = functools.partial(style_file_scores, device=resolve_device(cfg.device),
                                     max_side=scale.eval_side, painting_side=scale.painting_side)
        report = run_recipe(cfg, evaluate, on_model)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        err.print(f"wrote {len(report['models'])} models and {cfg.out / REPORT_NAME} in "
                  f"{report['wall_s']} s on {report['device']}", highlight=False)
