"""Live controls: what the preview keys do, and switching styles while frames flow.

`apply_key` is a pure function from (state, key) to a new state, so every key binding is tested
without a window. `StyleCycler` is the stylize callable the pipeline sees; the preview changes
its style, strength and colour preservation between frames.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..models.color import check_color_mode, preserve_color
from ..models.stylizer import blend_strength

log = logging.getLogger(__name__)

STRENGTH_STEP = 0.1

KEYS = {
    "next_style": (ord("n"), ord("]"), 83),   # 83: right arrow in OpenCV's waitKey on Linux
    "prev_style": (ord("p"), ord("["), 81),   # 81: left arrow
    "strength_up": (ord("+"), ord("="), 82),  # 82: up arrow
    "strength_down": (ord("-"), ord("_"), 84),  # 84: down arrow
    "side_by_side": (ord("o"),),
    "preserve_color": (ord("c"),),
    "snapshot": (ord("s"),),
    "pause": (ord(" "),),
    "quit": (ord("q"), 27),                    # 27: Esc
}
KEY_HELP = ("n/p or ←/→ style   +/- or ↑/↓ strength   o original side by side   "
            "c keep colours (off/luminance/histogram)   s snapshot   space pause   q/Esc quit")
# What `c` steps through (rtstyle.models.color.COLOR_MODES, off first).
COLOR_CYCLE = (None, "luminance", "histogram")


@dataclass(frozen=True)
class ViewState:
    style_index: int = 0
    style_count: int = 1
    strength: float = 1.0
    side_by_side: bool = False
    preserve_color: str | None = None
    paused: bool = False
    quit: bool = False
    snapshot_pending: bool = False

    def consumed_snapshot(self) -> ViewState:
        return dataclasses.replace(self, snapshot_pending=False)


def action_for(key: int) -> str | None:
    if key < 0:
        return None
    key &= 0xFF  # waitKey may carry modifier bits above the low byte
    for action, codes in KEYS.items():
        if key in codes:
            return action
    return None


def apply_key(state: ViewState, key: int) -> ViewState:
    """The state after pressing `key` (OpenCV `waitKey` code; -1 means no key)."""
    action = action_for(key)
    if action is None:
        return state
    replace = dataclasses.replace
    if action == "next_style":
        return replace(state, style_index=(state.style_index + 1) % state.style_count)
    if action == "prev_style":
        return replace(state, style_index=(state.style_index - 1) % state.style_count)
    if action == "strength_up":
        return replace(state, strength=round(min(1.0, state.strength + STRENGTH_STEP), 2))
    if action == "strength_down":
        return replace(state, strength=round(max(0.0, state.strength - STRENGTH_STEP), 2))
    if action == "side_by_side":
        return replace(state, side_by_side=not state.side_by_side)
    if action == "preserve_color":
        index = COLOR_CYCLE.index(state.preserve_color) if state.preserve_color in COLOR_CYCLE else 0
        return replace(state, preserve_color=COLOR_CYCLE[(index + 1) % len(COLOR_CYCLE)])
    if action == "snapshot":
        return replace(state, snapshot_pending=True)
    if action == "pause":
        return replace(state, paused=not state.paused)
    return replace(state, quit=True)


class EngineStyle:
    """One style of a multi-style engine (`InferenceEngine.set_style_weights`): sets the live
    style vector, then runs the shared engine. Several of these share one engine, so switching
    between them switches no network and builds nothing. Everything else (warm-up, backend,
    skipped) is the engine's."""

    def __init__(self, engine, weights, name: str = ""):
        self.shared_engine = engine
        self.weights = weights
        self.name = name

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        self.shared_engine.set_style_weights(self.weights)
        return self.shared_engine(x01)

    def __getattr__(self, name: str):
        engine = self.__dict__.get("shared_engine")
        if engine is None:  # copy/pickle probing before __init__ ran
            raise AttributeError(name)
        return getattr(engine, name)


class StyleCycler:
    """Calls the engine of the current style and blends by strength; loads styles on first use.

    Colour preservation (`rtstyle.models.color`), then strength (`blend_strength`), are applied
    here, once, on the device, outside the engine: they work the same for every backend, and
    a key press changes them without a rebuild.
    """

    def __init__(self, names: Sequence[str], load: Callable[[str], Callable],
                 strength: float = 1.0, preserve_color: str | None = None):
        if not names:
            raise ValueError("StyleCycler needs at least one style")
        self.names = list(names)
        self._load = load
        self._engines: dict[int, Callable] = {0: load(self.names[0])}
        self.index = 0
        self.strength = strength
        self.preserve_color = check_color_mode(preserve_color)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.names[self.index]

    @property
    def engine(self) -> Callable:
        """The current style's engine (for warm-up and backend reporting)."""
        with self._lock:
            return self._engines[self.index]

    @property
    def steady_generator(self) -> bool:
        """Whether the current style's generator was trained for temporal stability."""
        return bool(getattr(self.engine, "steady_generator", False))

    def select(self, index: int) -> None:
        """Switch styles; loading happens here, in the caller's thread, not mid-frame."""
        index %= len(self.names)
        if index not in self._engines:
            self._engines[index] = self._load(self.names[index])
        with self._lock:
            self.index = index
        log.info("style: %s", self.names[index])

    def apply(self, state) -> None:
        """Follow a `ViewState` from the preview keys."""
        self.strength = state.strength
        self.preserve_color = state.preserve_color
        if state.style_index != self.index:
            self.select(state.style_index)

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        with self._lock:
            engine = self._engines[self.index]
        stylized = preserve_color(x01, engine(x01), self.preserve_color)
        return blend_strength(x01, stylized, self.strength)
