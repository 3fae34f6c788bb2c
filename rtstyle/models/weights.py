"""Reading and writing style files, and converting foreign checkpoints into them.

Our files are safetensors whose header metadata holds the style's spec as JSON under
`rtstyle.spec` (architecture and its parameters, style name, painting and attribution, training
settings) and `rtstyle.format`. Foreign `.pth` files are read only with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import WeightsError
from ..images import atomic_output
from .architectures import get_arch
from .vgg import read_torch_file

FORMAT_VERSION = "1"
_NORM_STATS = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_spec(path: Path) -> dict:
    """The metadata of an rtstyle file, read from the header only (cheap, for listings)."""
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path.name}: not a readable safetensors file ({exc})") from None
    if meta.get("rtstyle.format") != FORMAT_VERSION or "rtstyle.spec" not in meta:
        raise WeightsError(
            f"{path.name}: not an rtstyle style file (no rtstyle metadata); "
            "convert foreign checkpoints with `rtstyle styles import`"
        )
    try:
        return json.loads(meta["rtstyle.spec"])
    except json.JSONDecodeError:
        raise WeightsError(f"{path.name}: rtstyle metadata is corrupt") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path.name}: corrupt weights ({exc})") from None


def write_style_file(path: Path, state: dict[str, torch.Tensor], spec: dict,
                     dtype: torch.dtype | None = torch.float16) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a style behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
        for k, v in state.items()
    }
    meta = {"rtstyle.format": FORMAT_VERSION, "rtstyle.spec": json.dumps(spec, sort_keys=True)}
    with atomic_output(path) as tmp:  # the umask's mode, not 0600: users keep and share these
        save_file(tensors, str(tmp), metadata=meta)
    return path


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fix legacy keys: DataParallel's `module.` prefix and instance-norm running stats.

    Old PyTorch saved `running_mean/var` for InstanceNorm2d; current modules have none, which is
    why pytorch/examples and CycleGAN each strip them before loading.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if _NORM_STATS.search(key):
            continue
        out[key] = value
    return out


def _unwrap(obj: dict) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "net_G", "netG"):
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError("the checkpoint holds no tensors")
    return tensors


def read_foreign(path: Path) -> dict[str, torch.Tensor]:
    """A foreign checkpoint's tensors, safely: safetensors, or torch.load(weights_only=True)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_tensors(path)
    return _unwrap(read_torch_file(path))


def convert_checkpoint(arch: str, path: Path, transformer: Path | None = None,
                       vgg: Path | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a foreign checkpoint into our key layout; return (tensors, arch_params).

    SANet comes as two files upstream (`decoder.pth`, `transformer.pth`); we prefix them into
    one state dict. With `vgg`, the encoder it was trained with is embedded too.
    """
    state = clean_state_dict(read_foreign(path))
    if arch == "adain" and not any(k.startswith("decoder.") for k in state):
        # naoto0804/pytorch-AdaIN's decoder.pth: the bare Sequential that `sanet.make_decoder` builds
        state = {f"decoder.{k}": v for k, v in state.items()}
    if arch == "sanet" and not any(k.startswith("decoder.") for k in state):
        if transformer is None:
            raise WeightsError("SANet import needs the decoder file and --transformer FILE")
        state = {f"decoder.{k}": v for k, v in state.items()}
        state.update({f"transform.{k}": v
                      for k, v in clean_state_dict(read_foreign(transformer)).items()})
    if vgg is not None:
        from .vgg import vgg19_from_state_dict

        encoder = vgg19_from_state_dict(read_foreign(vgg))
        state.update({f"encoder.{k}": v for k, v in encoder.state_dict().items()})
    params = get_arch(arch).infer_params(state)
    build_and_load(arch, params, state)  # proves the tensors fit before anything is written
    return state, params


def build_and_load(arch: str, params: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Build the network and load `state` strictly, with one readable error on mismatch.

    SANet files may omit the frozen encoder; it then comes from the default VGG-19 weights.
    """
    from .architectures import build_generator

    info = get_arch(arch)
    kwargs = dict(params)
    prefix = info.frozen_encoder_prefix
    if prefix and not any(k.startswith(prefix) for k in state):
        from .vgg import load_vgg19

        kwargs["encoder"] = load_vgg19()
    model = build_generator(arch, kwargs)
    target = model.state_dict()
    if prefix:
        state = {**{k: v for k, v in target.items() if k.startswith(prefix)}, **state}
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(f"weights do not fit a {info.name} network: {'; '.join(parts)}")
    bad = [k for k in target if tuple(target[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise WeightsError(
            f"weights do not fit a {info.name} network {params}: {k} has shape "
            f"{tuple(state[k].shape)}, expected {tuple(target[k].shape)}"
        )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()
