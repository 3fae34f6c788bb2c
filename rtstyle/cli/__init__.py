"""The `rtstyle` command: thin Typer verbs, one module per verb group, over library objects.

Each verb parses its options, calls one library object and renders the result; nothing here
wires pipelines or models. See `common` for the error boundary and shared options.
"""

from __future__ import annotations

import logging

import typer

from . import batch, bench, cameras, evaluate, export, image, run, serve, styles, train

app = typer.Typer(
    name="rtstyle",
    help="Real-time painting styles for webcam and video files, with OBS output.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
app.add_typer(styles.styles_app, name="styles")
app.command()(image.image)
app.command()(run.video)
app.command()(run.webcam)
app.command()(batch.batch)
app.command()(cameras.cameras)
app.command()(bench.bench)
app.command()(serve.serve)
app.add_typer(export.export_app, name="export")
app.add_typer(evaluate.eval_app, name="eval")
app.add_typer(train.train_app, name="train")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
