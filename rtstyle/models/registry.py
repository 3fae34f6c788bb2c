"""Style registry: a name maps to architecture + weights + metadata (cf. timm PretrainedCfg).

Names use timm's `name.tag` form: `monet` resolves to its default tag (`monet.v1`) and older
tags stay loadable as `monet.v0`. Styles come from the bundled `assets/manifest.json` and from
`.safetensors` files in the user's data directory; each file carries its own spec.

A multi-style file (conditional instance norm, `rtstyle.models.mid`) lists its styles in its
spec (`"styles": ["monet", "ukiyoe", …]`, in the order of the norms' rows): each is registered
under its own name with the file's tag, and its spec carries `style_index`. Several names
that share one file share one network at run time (`StyleSpec.shares_network_with`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UnknownStyleError, WeightsError
from .architectures import get_arch
from .weights import read_spec, sha256_file

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
MANIFEST = ASSETS_DIR / "manifest.json"


@dataclass(frozen=True)
class StyleSpec:
    name: str
    tag: str
    arch: str
    weights: Path
    input_range: str
    stride_multiple: int
    arch_params: dict = field(default_factory=dict)
    sha256: str | None = None
    license: str = "unknown"
    origin: str = "file"  # bundled | user | file
    meta: dict = field(default_factory=dict)
    # Row of a multi-style file's conditional instance norms (None: a single-style file).
    style_index: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.name}.{self.tag}"

    @property
    def file_styles(self) -> list[str]:
        """The style names a multi-style file holds, in order ([] for a single-style file)."""
        return [str(n) for n in self.meta.get("styles") or []]

    def shares_network_with(self, other: StyleSpec) -> bool:
        """Both are styles of the same multi-style file: one network, one engine, and switching
        between them only changes the style weight vector."""
        return (self.style_index is not None and other.style_index is not None
                and Path(self.weights).resolve() == Path(other.weights).resolve())

    def members(self) -> list[StyleSpec]:
        """One spec per style of a multi-style file (named by the file's `styles`); [self] for
        a single-style file."""
        names = self.file_styles
        if not names:
            return [self]
        n_styles = int(self.arch_params.get("n_styles", 1))
        if n_styles != len(names):
            raise WeightsError(f"{Path(self.weights).name}: lists {len(names)} styles for a "
                               f"network with {n_styles}")
        styles = self.meta.get("style_info") or [{}] * len(names)
        return [dataclasses.replace(self, name=n, style_index=i,
                                    meta={**self.meta, "style": styles[i] if i < len(styles)
                                          else {}})
                for i, n in enumerate(names)]

    @property
    def default_strength(self) -> float:
        """The strength a run uses when none is given: 1 (full style) unless the file
        recommends less (`"default_strength"` in its spec: the bundled any-painting model's
        measured operating point, README "Any painting")."""
        return float(self.meta.get("default_strength", 1.0))

    @property
    def video_style_scale(self) -> float | str:
        """The stroke scale (`--style-scale`) a video, camera or live run uses when none is
        given: 1 unless the file recommends another (`"video_style_scale"` in its spec: the
        bundled multi-style net's measured choice, README "Bundled styles"). Stills use 1.
        In a multi-style file it may be a table by style name, "*" for the others."""
        value = self.meta.get("video_style_scale", 1.0)
        if isinstance(value, dict):
            value = value.get(self.name, value.get("*", 1.0))
        return value

    @property
    def needs_style_image(self) -> bool:
        return get_arch(self.arch).needs_style_image

    def summary(self) -> dict:
        """JSON-friendly description for `rtstyle styles --json`."""
        style = self.meta.get("style", {})
        return {
            "name": self.name,
            "tag": self.tag,
            "full_name": self.full_name,
            "arch": self.arch,
            "arch_params": self.arch_params,
            "origin": self.origin,
            "weights": str(self.weights),
            "painting": style.get("painting"),
            "attribution": style.get("attribution"),
            "license": self.license,
            "needs_style_image": self.needs_style_image,
            "default_strength": self.default_strength,
            "video_style_scale": self.video_style_scale,
            "style_index": self.style_index,
            "file_styles": self.file_styles,
        }


def spec_from_file(path: Path, origin: str = "file", sha256: str | None = None) -> StyleSpec:
    raw = read_spec(path)
    try:
        arch = get_arch(raw["arch"])
        return StyleSpec(
            name=raw["name"],
            tag=raw.get("tag", "v1"),
            arch=arch.name,
            weights=path,
            input_range=raw.get("input_range", arch.input_range),
            stride_multiple=int(raw.get("stride_multiple", arch.stride_multiple)),
            arch_params=raw.get("arch_params", {}),
            sha256=sha256,
            license=raw.get("license", "unknown"),
            origin=origin,
            meta=raw,
        )
    except KeyError as exc:
        raise WeightsError(f"{path.name}: rtstyle metadata lacks {exc}") from None


def user_data_dir() -> Path:
    """Where user styles live: `RTSTYLE_HOME`, else the platform's per-user data directory."""
    if os.environ.get("RTSTYLE_HOME"):
        return Path(os.environ["RTSTYLE_HOME"])
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "rtstyle"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "rtstyle"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "rtstyle"


def user_styles_dir() -> Path:
    return user_data_dir() / "styles"


class StyleRegistry:
    """Names are case-insensitive (`--style Monet`); each is kept as first written for display.

    Keys are casefolded: `_specs` by full name, `_defaults` (name -> default tag) by name,
    `_aliases` (alias -> full name) by alias.
    """

    def __init__(self):
        self._specs: dict[str, StyleSpec] = {}
        self._defaults: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._alias_names: dict[str, str] = {}
        self.problems: list[str] = []  # user files that could not be read, for `rtstyle styles`

    def register(self, spec: StyleSpec, default: bool = False) -> None:
        key = spec.full_name.casefold()
        if key in self._specs:
            other = self._specs[key]
            raise WeightsError(
                f"style '{spec.full_name}' is defined twice ({other.weights} and {spec.weights})"
            )
        self._specs[key] = spec
        name = spec.name.casefold()
        if default or name not in self._defaults:
            self._defaults[name] = spec.tag

    def add_alias(self, alias: str, target: str) -> None:
        """A second name for a style (e.g. `monet` -> `monet-lite`); real names win over aliases."""
        self._aliases[alias.casefold()] = target
        self._alias_names[alias.casefold()] = alias

    def aliases_for(self, spec: StyleSpec) -> list[str]:
        """The aliases that resolve to `spec` now (shadowed ones excluded)."""
        return sorted(self._alias_names[a] for a, target in self._aliases.items()
                      if target.casefold() == spec.full_name.casefold()
                      and a not in self._defaults)

    def names(self) -> list[str]:
        real = {self._specs[f"{name}.{tag}".casefold()].name for name, tag in self._defaults.items()}
        aliases = {self._alias_names[a] for a in self._aliases if a not in self._defaults}
        return sorted(real | aliases, key=str.casefold)

    def default_spec(self, spec: StyleSpec) -> StyleSpec:
        """The spec a bare `spec.name` resolves to."""
        return self._specs[f"{spec.name}.{self._defaults[spec.name.casefold()]}".casefold()]

    def tags_of(self, name: str) -> list[StyleSpec]:
        """Every tag of one style (not an alias), oldest first."""
        return [s for s in self.specs() if s.name.casefold() == name.casefold()]

    def _resolve_key(self, name: str) -> str:
        """Casefolded full name for `name`, `name.tag`, `alias` or `alias.tag` (may not exist)."""
        key = name.strip().casefold()
        if key in self._specs:
            return key
        if key in self._defaults:
            return f"{key}.{self._defaults[key]}"
        if key in self._aliases:
            return self._aliases[key].casefold()
        base, dot, tag = key.rpartition(".")
        if dot and base not in self._defaults and base in self._aliases:
            return f"{self._aliases[base].casefold().rpartition('.')[0]}.{tag}"
        return key

    def suggestions(self, name: str) -> list[str]:
        """Close names for a typo (difflib), or the real tags when only the tag is wrong."""
        key = name.strip().casefold()
        base, dot, _ = key.rpartition(".")
        if dot:
            known = base if base in self._defaults else (
                self._aliases[base].casefold().rpartition(".")[0] if base in self._aliases else None)
            if known is not None:
                return [s.full_name for s in self.tags_of(known)]
        pool = {n.casefold(): n for n in self.names()}
        pool.update({s.full_name.casefold(): s.full_name for s in self.specs()} if dot else {})
        return [pool[m] for m in difflib.get_close_matches(key, pool, n=3, cutoff=0.6)]

    def get(self, name: str) -> StyleSpec:
        spec = self._specs.get(self._resolve_key(name))
        if spec is None:
            raise UnknownStyleError(name, self.names(), self.suggestions(name))
        return spec

    def specs(self) -> list[StyleSpec]:
        return sorted(self._specs.values(), key=lambda s: (s.name.casefold(), s.tag))

    def default_specs(self) -> list[StyleSpec]:
        """One spec per style: the tag its bare name resolves to."""
        return [s for s in self.specs() if self._defaults[s.name.casefold()] == s.tag]


# Facts about a run, not settings chosen for it: left out when tags are compared.
RESULT_KEYS = ("name", "tag", "training.duration_s", "training.device", "training.final_losses",
               "training.images_per_s")


def _flatten(meta: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in meta.items():
        path = f"{prefix}{key}"
        if any(path == r or path.startswith(f"{r}.") for r in RESULT_KEYS):
            continue
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def tag_differences(specs: list[StyleSpec]) -> dict[str, dict]:
    """For each tag of a style, the metadata (training settings, painting, licence…) whose
    value is not the same in all its tags, as dotted keys (`training.steps`); None = absent."""
    by_name: dict[str, list[StyleSpec]] = {}
    for spec in specs:
        by_name.setdefault(spec.name.casefold(), []).append(spec)
    result = {}
    for group in by_name.values():
        flats = [_flatten(s.meta) for s in group]
        keys = sorted({k for flat in flats for k in flat})
        differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True)
                                             for f in flats}) > 1]
        for spec, flat in zip(group, flats, strict=True):
            result[spec.full_name] = {k: flat.get(k) for k in differing}
    return result


def _load_manifest() -> list[dict]:
    if not MANIFEST.is_file():
        return []
    return json.loads(MANIFEST.read_text()).get("styles", [])


def discover() -> StyleRegistry:
    """Bundled styles first (their manifest marks the default tags), then the user's files."""
    registry = StyleRegistry()
    for entry in _load_manifest():
        spec = spec_from_file(ASSETS_DIR / entry["file"], "bundled", entry.get("sha256"))
        default = entry.get("default", False)  # a multi-style file's may list its names
        for member in spec.members():
            registry.register(member, default=(member.name in default if isinstance(default, list)
                                               else bool(default)))
        aliases = entry.get("aliases", [])
        # A multi-style file's aliases name its styles: {"monet": "monet-mid"}.
        pairs = (aliases.items() if isinstance(aliases, dict)
                 else ((a, spec.name) for a in aliases))
        for alias, target in pairs:
            registry.add_alias(alias, f"{target}.{spec.tag}")
    folder = user_styles_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.safetensors")):
            try:
                members = spec_from_file(path, "user").members()
            except WeightsError as exc:  # one broken user file must not hide the others
                registry.problems.append(str(exc))
                continue
            for member in members:  # a name taken twice skips that style, not the file
                try:
                    registry.register(member)
                except WeightsError as exc:
                    registry.problems.append(str(exc))
    return registry


def list_styles() -> list[StyleSpec]:
    return discover().specs()


def style_names() -> list[str]:
    return discover().names()


def looks_like_path(arg: str) -> bool:
    return arg.endswith(".safetensors") or os.sep in arg or "/" in arg or Path(arg).is_file()


def resolve_style(arg: str) -> StyleSpec:
    """A registered name (`monet`, `monet.v1`) or a path to an rtstyle `.safetensors` file;
    `FILE.safetensors#NAME` (or `#INDEX`) picks one style of a multi-style file (its first
    without)."""
    path, hash_, pick = arg.rpartition("#")
    if not (hash_ and path.endswith(".safetensors")):
        path, pick = arg, ""
    if looks_like_path(path):
        members = spec_from_file(Path(path).expanduser(), "file").members()
        if not pick:
            return members[0]
        for i, member in enumerate(members):
            if pick.casefold() in (member.name.casefold(), str(i)):
                return member
        raise UnknownStyleError(pick, [m.name for m in members],
                                difflib.get_close_matches(pick, [m.name for m in members]))
    return discover().get(arg)


def verify_weights(spec: StyleSpec) -> None:
    if spec.sha256 and sha256_file(spec.weights) != spec.sha256:
        raise WeightsError(
            f"{spec.weights.name}: checksum does not match the manifest; reinstall rtstyle"
        )
