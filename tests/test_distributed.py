"""DDP through torchrun: two CPU processes (gloo) train johnson and sanet for a few tiny steps.

Each trainer checks at the end that every rank holds the same weights (the gradients were
all-reduced), so a trainer that bypasses DDP's forward fails here, not silently in a GPU run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import photos_and_paintings

from rtstyle.models.registry import resolve_style


def torchrun(args: list[str], home: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RTSTYLE_HOME": str(home)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "rtstyle.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def folders(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    return photos_and_paintings(shared_data, tmp_path_factory.mktemp("ddp"), photos=6)


def _last_json(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def test_torchrun_two_ranks_train_johnson_with_the_temporal_term(folders, shared_data, tmp_path):
    photos, _ = folders
    done = torchrun(["train", "johnson", "--style-image",
                     str(shared_data / "styles" / "hokusai_great_wave.jpg"), "--data", str(photos),
                     "--name", "ddp-wave", "--size", "48", "--steps", "3", "--batch", "1",
                     "--channels", "4", "--n-res", "1", "--temporal-weight", "5",
                     "--device", "cpu", "--precision", "fp32", "--sample-every", "0",
                     "--work-dir", str(tmp_path / "work"), "--json"], tmp_path / "home")
    assert done.returncode == 0, done.stderr[-3000:]
    result = _last_json(done.stdout)  # only rank 0 reports and exports
    assert result["world_size"] == 2 and result["steps"] == 3 and set(result["losses"]) >= {"temporal", "total"}
    styles = list((tmp_path / "home" / "styles").glob("*.safetensors"))
    assert [p.name for p in styles] == ["ddp-wave.v1.safetensors"]
    saved = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    assert saved["world_size"] == 2 and saved["step"] == 3
    assert resolve_style(str(styles[0])).meta["training"]["temporal_weight"] == 5.0


def test_torchrun_two_ranks_train_sanet(folders, tmp_path):
    photos, paintings = folders
    done = torchrun(["train", "sanet", "--content", str(photos), "--styles", str(paintings),
                     "--name", "ddp-sanet", "--size", "32", "--steps", "2", "--batch", "1",
                     "--device", "cpu", "--precision", "fp32", "--sample-every", "0",
                     "--work-dir", str(tmp_path / "work"), "--json"], tmp_path / "home")
    assert done.returncode == 0, done.stderr[-3000:]
    result = _last_json(done.stdout)
    assert result["world_size"] == 2 and result["steps"] == 2
    assert [p.name for p in (tmp_path / "home" / "styles").glob("*.safetensors")] == [
        "ddp-sanet.v1.safetensors"]
