"""The matting Laplacian: scipy's sparse matrix and the matrix-free term are the same L."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtstyle.models.matting import MattingTerm, matting_laplacian


def test_the_matrix_free_term_equals_the_sparse_laplacian_and_its_gradient():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    h, w = 9, 11
    image, v = rng.random((h, w, 3)), rng.random((h * w, 3))
    L = matting_laplacian(image, eps=1e-5)
    assert isinstance(L, sp.csr_matrix) and L.shape == (h * w, h * w)
    assert abs(L - L.T).max() < 1e-12                   # symmetric
    assert np.abs(L @ np.ones(h * w)).max() < 1e-10      # constants cost nothing
    expected = sum(v[:, c] @ (L @ v[:, c]) for c in range(3))
    term = MattingTerm(torch.from_numpy(image).permute(2, 0, 1)[None].double(), eps=1e-5)
    vt = torch.from_numpy(v.reshape(h, w, 3)).permute(2, 0, 1)[None].requires_grad_(True)
    energy = term(vt)
    energy.backward()
    assert float(energy.detach()) == pytest.approx(expected, rel=1e-5)
    grad = vt.grad[0].permute(1, 2, 0).reshape(-1, 3).numpy()
    np.testing.assert_allclose(grad, 2 * (L @ v), atol=1e-5)


def test_a_locally_affine_recolouring_costs_nothing():
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((1, 3, 12, 14))).float()
    m = torch.tensor([[0.5, 0.2, 0.1], [0.0, 0.9, 0.0], [0.3, 0.1, 0.4]])
    affine = torch.einsum("ij,njhw->nihw", m, image) + 0.2
    term = MattingTerm(image, eps=1e-7)
    assert float(term(affine)) < 1e-4 * float(term(torch.rand_like(image)))
