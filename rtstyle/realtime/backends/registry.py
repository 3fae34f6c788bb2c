"""The one list of inference backends: each registers itself where it is defined.

A backend is one file in this package with `@register_backend(...)` on its class, carrying its
facts as data (like timm's `@register_model` with its `PretrainedCfg`): name, aliases, where it
stands in the speed order of each device, its precisions, and what `auto` needs to weigh a
build against a run's length (a conservative speed-up over FP32 eager, the typical cold build
time). Help text, error messages and `auto` all read `backend_names()`, so they cannot disagree.

Importing this module, and the backend modules it discovers, imports neither torch nor
onnxruntime nor torch_tensorrt: the CLI builds its help text from it at import time.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ...errors import UserInputError

PRECISION_NAMES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class BackendInfo:
    """Facts about a backend, declared on its class.

    `rank`: position in the speed order per device type, fastest (lowest) first; a device type
    that is absent is still tried by `auto` (after the ranked ones), so its skip reason is
    logged. `precisions`: per device type, fastest first, as "fp32"/"fp16"/"bf16" (BF16 on a
    CPU is used only where the CPU has native BF16). `speedup`: per device type, a conservative
    per-frame speed-up over FP32 eager. `build_seconds`: per device type, a typical cold build
    (0: nothing to build); the engine prefers the build time it measured on this machine.
    """

    name: str
    cls: type
    aliases: tuple[str, ...] = ()
    rank: Mapping[str, int] = field(default_factory=dict)
    precisions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    speedup: Mapping[str, float] = field(default_factory=dict)
    build_seconds: Mapping[str, float] = field(default_factory=dict)

    def order(self) -> tuple[int, str]:
        """Sort key of the device-independent list: best rank on any device, then name."""
        return (min(self.rank.values(), default=1 << 30), self.name)


_REGISTRY: dict[str, BackendInfo] = {}
_ALIASES: dict[str, str] = {}
_INSTANCES: dict[str, object] = {}
_discovered = False


def register_backend(name: str, *, aliases: tuple[str, ...] = (),
                     rank: Mapping[str, int] | None = None,
                     precisions: Mapping[str, tuple[str, ...]] | None = None,
                     speedup: Mapping[str, float] | None = None,
                     build_seconds: Mapping[str, float] | None = None) -> Callable[[type], type]:
    """Class decorator: register a backend under `name` (and `aliases`) with its facts.

    A name or alias that is already taken raises, as torchvision's model registry does.
    """

    def decorate(cls: type) -> type:
        taken = [n for n in (name, *aliases) if n in _REGISTRY or n in _ALIASES or n == "auto"]
        if taken:
            raise ValueError(f"backend name {', '.join(map(repr, taken))} is already registered")
        for table in (precisions or {}).values():
            unknown = set(table) - set(PRECISION_NAMES)
            if unknown:
                raise ValueError(f"backend {name!r}: unknown precision(s) {sorted(unknown)}")
        info = BackendInfo(name, cls, tuple(aliases),
                           MappingProxyType(dict(rank or {})),
                           MappingProxyType({k: tuple(v) for k, v in (precisions or {}).items()}),
                           MappingProxyType(dict(speedup or {})),
                           MappingProxyType(dict(build_seconds or {})))
        cls.name = name
        cls.info = info
        _REGISTRY[name] = info
        _ALIASES.update({alias: name for alias in aliases})
        return cls

    return decorate


def unregister_backend(name: str) -> None:
    """Remove a backend (tests register throwaway ones)."""
    info = _REGISTRY.pop(name)
    for alias in info.aliases:
        _ALIASES.pop(alias, None)
    _INSTANCES.pop(name, None)


def _discover() -> None:
    """Import every module of this package once, so each backend's decorator runs.

    Modules whose names start with "_" are helpers, not backends.
    """
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"{package}.{module.name}")


def speed_order(device_type: str) -> list[str]:
    """The backends ranked for `device_type`, fastest first (what `bench --backend all` times)."""
    _discover()
    ranked = [i for i in _REGISTRY.values() if device_type in i.rank]
    return [i.name for i in sorted(ranked, key=lambda i: (i.rank[device_type], i.name))]


def backend_names(device_type: str | None = None) -> list[str]:
    """Every registered backend name. With `device_type`, in the order `auto` tries them there:
    its speed order, then the others (so their skip reasons are logged)."""
    _discover()
    names = [i.name for i in sorted(_REGISTRY.values(), key=BackendInfo.order)]
    if device_type is None:
        return names
    ranked = speed_order(device_type)
    return ranked + [n for n in names if n not in ranked]


def backend_aliases() -> dict[str, str]:
    """alias -> backend name ("onnx" -> "onnxruntime")."""
    _discover()
    return dict(_ALIASES)


def backend_help() -> str:
    """"auto, compile, tensorrt, onnxruntime (or onnx, ort), eager": the `--backend` help."""
    _discover()
    parts = ["auto"]
    for name in backend_names():
        aliases = _REGISTRY[name].aliases
        parts.append(f"{name} (or {', '.join(aliases)})" if aliases else name)
    return ", ".join(parts)


def resolve_backend_name(name: str) -> str:
    """"auto", a backend name or an alias -> "auto" or the backend name; else a user error that
    lists the valid names."""
    _discover()
    if name == "auto" or name in _REGISTRY:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    raise UserInputError(f"unknown backend '{name}'; choose from: "
                         + ", ".join(["auto", *backend_names()]))


def backend_info(name: str) -> BackendInfo:
    resolved = resolve_backend_name(name)
    if resolved == "auto":
        raise UserInputError("'auto' chooses a backend; it is not one")
    return _REGISTRY[resolved]


def get_backend(name: str):
    """The (shared) instance of a backend, by name or alias."""
    info = backend_info(name)
    if info.name not in _INSTANCES:
        _INSTANCES[info.name] = info.cls()
    return _INSTANCES[info.name]
