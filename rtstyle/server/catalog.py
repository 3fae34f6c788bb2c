"""The installed styles as the web page and API show them, and the stylizers loaded for stills.

A client names a style; the name is looked up in the registry and nothing else: unlike the
CLI's `--style`, it is never taken as a file path.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from fastapi import HTTPException

from ..errors import UnknownStyleError
from ..models import registry as style_registry
from ..models.loading import load_stylizer
from ..models.registry import StyleRegistry, StyleSpec, discover
from ..models.stylizer import Stylizer


def _gallery_files() -> dict[str, Path]:
    """Full style name -> its bundled gallery picture (photo · painting · output)."""
    try:
        entries = json.loads(style_registry.MANIFEST.read_text()).get("styles", [])
    except (OSError, ValueError):
        return {}
    pictures = {}
    for entry in entries:
        gallery = entry.get("gallery") or {}
        # A multi-style file has one picture per style: {"monet": "monet.v4.jpg", …}.
        named = gallery if isinstance(gallery, dict) else {entry["name"]: gallery}
        for name, file in named.items():
            picture = style_registry.ASSETS_DIR / file
            if file and picture.is_file():
                pictures[f"{name}.{entry['tag']}".casefold()] = picture
    return pictures


class StyleCatalog:
    """The registry as of the last `refresh()` (server start; styles added later need a
    restart, as with any other process)."""

    def __init__(self):
        self.refresh()

    def refresh(self) -> None:
        self.registry: StyleRegistry = discover()
        self.pictures = _gallery_files()

    def resolve(self, name: str | None, *, live: bool = False) -> StyleSpec:
        """A registered name, alias or `name.tag`; 400 with the valid names otherwise."""
        if not name:
            raise HTTPException(400, "choose a style: the field 'style' (GET /api/styles "
                                     "lists them)")
        try:
            spec = self.registry.get(name)
        except UnknownStyleError as exc:
            raise HTTPException(400, str(exc)) from None
        if live and spec.needs_style_image:
            raise HTTPException(400, f"'{spec.name}' paints from an uploaded painting; it works "
                                     "for images and videos, not the live camera")
        return spec

    @property
    def arbitrary_style(self) -> bool:
        """Whether an installed model paints in the manner of any uploaded painting (SANet)."""
        return any(s.needs_style_image for s in self.registry.specs())

    def picture(self, name: str) -> Path | None:
        try:
            spec = self.registry.get(name)
        except UnknownStyleError:
            return None
        return self.pictures.get(spec.full_name.casefold())

    def listing(self) -> list[dict]:
        """One entry per style (its default tag), with the other tags and the aliases."""
        styles = []
        for spec in self.registry.default_specs():
            summary = spec.summary()
            styles.append({
                "name": spec.name,
                "full_name": spec.full_name,
                "aliases": self.registry.aliases_for(spec),
                "tags": [s.tag for s in self.registry.tags_of(spec.name)],
                "arch": spec.arch,
                "painting": summary["painting"],
                "attribution": summary["attribution"],
                "license": spec.license,
                "origin": spec.origin,
                "needs_style_image": spec.needs_style_image,
                "default_strength": spec.default_strength,
                "video_style_scale": spec.video_style_scale,
                "image_url": f"/api/styles/{spec.full_name}/image"
                if spec.full_name.casefold() in self.pictures else None,
            })
        return styles


class StylizerCache:
    """Loaded networks for stills, the most recently used few kept (a load reads and
    checks the weights file, which is slower than stylizing a photo with a small net)."""

    def __init__(self, device: torch.device, size: int = 4):
        self.device = device
        self.size = size
        self._loaded: OrderedDict[str, Stylizer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: StyleSpec, painting: np.ndarray | None = None) -> Stylizer:
        """A painting-driven (SANet) model is set up for that painting and not cached."""
        if painting is not None:
            return load_stylizer(spec, device=self.device, style_image=painting)
        key = spec.full_name
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            stylizer = load_stylizer(spec, device=self.device)
            self._loaded[key] = stylizer
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
            return stylizer
