"""The closed-form matting Laplacian (Levin, Lischinski & Weiss 2008), DPST's photorealism term.

For an image I (RGB 0..1) the matting Laplacian L is the N×N matrix of the quadratic form

    Vᵀ L V = Σ_k min_{a,b} [ Σ_{i∈w_k} (V_i − aᵀI_i − b)² + ε |a|² ]

over every 3×3 window w_k that lies inside the image: VᵀLV is zero exactly when V is, window
by window, an affine function of the image's colours. Luan et al. (2017) add
λ/2 · Σ_c V_c[O]ᵀ L V_c[O] over the output's channels to the Gatys objective.

Two forms of the same L:

- `matting_laplacian` builds the sparse matrix with scipy (N×N CSR, 25 non-zeros a row), the
  textbook construction; it is the reference, and needs `scipy`.
- `MattingTerm` evaluates VᵀLV without the matrix: inside each window the minimum is
  |w| · (var(V) − covᵀ (Σ + ε/|w|)⁻¹ cov), a handful of 3×3 box means over the image (the
  identity behind the guided filter, He et al. 2013). That is O(N) memory, runs on any
  device, and autograd gives the exact gradient 2·L·V, so a megapixel costs tens of
  milliseconds instead of a multi-gigabyte matrix. Tests check both against each other.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import RtstyleError

DEFAULT_EPS = 1e-7          # Luan et al.'s value (and Levin's order of magnitude)
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def matting_laplacian(image01: np.ndarray, eps: float = DEFAULT_EPS, radius: int = 1):
    """The matting Laplacian of an H×W×3 image (float, 0..1) as a scipy CSR matrix of size
    (H·W)², pixels in row-major order. Windows are (2r+1)² and lie inside the image."""
    try:
        import scipy.sparse as sp
    except ImportError:
        raise RtstyleError("the sparse matting Laplacian needs scipy (pip install scipy)") from None
    img = np.asarray(image01, np.float64)
    h, w, _ = img.shape
    k = 2 * radius + 1
    size = k * k
    index = np.arange(h * w).reshape(h, w)
    windows = np.lib.stride_tricks.sliding_window_view(index, (k, k)).reshape(-1, size)
    colours = img.reshape(-1, 3)[windows]                          # n × |w| × 3
    mean = colours.mean(1, keepdims=True)
    centred = colours - mean
    cov = np.einsum("nwi,nwj->nij", centred, centred) / size
    inv = np.linalg.inv(cov + (eps / size) * np.eye(3))
    values = np.eye(size) - (1.0 + np.einsum("nwi,nij,nvj->nwv", centred, inv, centred)) / size
    rows = np.repeat(windows, size, axis=1).ravel()
    cols = np.tile(windows, (1, size)).ravel()
    return sp.coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w)).tocsr()


def _window_means(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Means over every (2r+1)² window inside the image (no padding)."""
    k = 2 * radius + 1
    return F.avg_pool2d(x, k, stride=1)


class MattingTerm:
    """Σ_c V_cᵀ L V_c for outputs V (N×C×H×W) against the image the term was built for.

    The image's window statistics, (Σ_k + ε/|w|)⁻¹ and the colour means, are computed once;
    each call then needs the window means of V, V·I and V² (5·C channels of box means), in
    float64.
    """

    def __init__(self, image01: torch.Tensor, eps: float = DEFAULT_EPS, radius: int = 1):
        from .guided import inverse_sym3

        self.radius = radius
        self.size = (2 * radius + 1) ** 2
        # float64: the window variances are differences of means, and far from the start
        # (a line search may try large steps) float32 cancellation makes them negative.
        image = image01.detach().double()
        self.image = image
        products = torch.stack([image[:, i] * image[:, j] for i, j in _PAIRS], 1)
        means = _window_means(torch.cat([image, products], 1), radius)
        mu = means[:, :3]
        var = means[:, 3:] - torch.stack([mu[:, i] * mu[:, j] for i, j in _PAIRS], 1)
        var[:, [0, 3, 5]] += eps / self.size
        self.mean = mu
        n, _, h, w = mu.shape
        self.inverse = inverse_sym3(var).view(n, 3, 3, h, w)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """Σ_c V_cᵀ L V_c (a 0-d tensor of `v`'s dtype), differentiable in `v`."""
        dtype, v = v.dtype, v.double()
        image, c = self.image, v.shape[1]
        cross = torch.cat([v * image[:, i:i + 1] for i in range(3)], 1)     # i-major, then c
        means = _window_means(torch.cat([v, v * v, cross], 1), self.radius)
        mv, mvv = means[:, :c], means[:, c:2 * c]
        mvi = means[:, 2 * c:].view(v.shape[0], 3, c, *means.shape[-2:])
        cov = mvi - self.mean.unsqueeze(2) * mv.unsqueeze(1)                # n × 3 × c × h × w
        solved = (self.inverse.unsqueeze(3) * cov.unsqueeze(1)).sum(2)      # (Σ+ε)⁻¹ cov
        explained = (cov * solved).sum(1)
        return (self.size * (mvv - mv * mv - explained).sum()).to(dtype)
