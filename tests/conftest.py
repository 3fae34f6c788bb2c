"""Shared fixtures: the data folder beside the checkout, tiny real style files, a user dir."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from rtstyle.models.johnson import TransformerNet
from rtstyle.models.weights import write_style_file

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def children_hear_ctrl_c():
    """Tests send Ctrl-C (SIGINT) to the rtstyle processes they start. A test run launched in
    the background (`nohup pytest … &`) ignores SIGINT, and an ignored signal stays ignored
    in every child, so those children would paint on: give this process Python's own
    handler, which its children's exec resets to the default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def linked_folder(folder: Path, sources: list[Path]) -> Path:
    """A folder of symlinks to some shared files, so a trainer sees just those (nothing copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in sources:
        (folder / src.name).symlink_to(src)
    return folder


def photos_and_paintings(shared_data: Path, root: Path, photos: int) -> tuple[Path, Path]:
    """`root/photos` (the first training photos) and `root/paintings` (the Hiroshige prints)."""
    train = sorted((shared_data / "content" / "train").glob("*.jpg"))[:photos]
    prints = sorted((shared_data / "styles").glob("hiroshige_*.jpg"))
    return linked_folder(root / "photos", train), linked_folder(root / "paintings", prints)


def make_tiny_style(path: Path, name: str = "tiny", tag: str = "v1", seed: int = 0,
                    channels: int = 8, n_res: int = 1, training: dict | None = None) -> Path:
    """A real (random but fixed) Johnson net written as an rtstyle file; not a trained style."""
    torch.manual_seed(seed)
    net = TransformerNet(channels=channels, n_res=n_res)
    spec = {
        "name": name,
        "tag": tag,
        "arch": "johnson",
        "arch_params": {"channels": channels, "n_res": n_res},
        "input_range": "0_255",
        "license": "test",
        "style": {"painting": "none (test weights)"},
        **({"training": training} if training else {}),
    }
    return write_style_file(path, net.state_dict(), spec, dtype=None)


@pytest.fixture
def rtstyle_home(tmp_path, monkeypatch) -> Path:
    """An empty user data dir, so tests never see the developer's own styles."""
    home = tmp_path / "rtstyle_home"
    (home / "styles").mkdir(parents=True)
    monkeypatch.setenv("RTSTYLE_HOME", str(home))
    return home


@pytest.fixture
def one_torch_thread():
    """Tiny nets gain nothing from threads, and on a busy 2-core runner they thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_bundled(tmp_path, monkeypatch) -> None:
    """Hide the bundled styles, for tests about exactly which names exist."""
    from rtstyle.models import registry

    monkeypatch.setattr(registry, "MANIFEST", tmp_path / "no-manifest.json")


@pytest.fixture
def tiny_style_file(tmp_path) -> Path:
    return make_tiny_style(tmp_path / "tiny.v1.safetensors")
