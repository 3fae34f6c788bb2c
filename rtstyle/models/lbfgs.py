"""L-BFGS on a picture, as the optimisation-based stills use it (`gatys`, `deep_photo`).

Two helpers shared by both:

- `pixel_variable`: the picture to optimise as a fresh, contiguous leaf tensor. `LBFGS`
  flattens every gradient with `grad.view(-1)`, and autograd gives a gradient the strides of
  its variable, so a channels-last, transposed or sliced picture (a photo read through a
  permuted array, a net's channels-last output, `resize` handing back its input unchanged)
  would fail there with "view size is not compatible with input tensor's size and stride".
- `CachedClosure`: the closure `LBFGS.step` calls, remembering its last point. Each `step()`
  opens by evaluating where the previous step's line search ended, which is almost always
  the last point evaluated; the cache serves that evaluation without a second VGG pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def pixel_variable(x: torch.Tensor) -> torch.Tensor:
    """A contiguous float32 copy of `x`, detached and requiring grad (always a copy:
    L-BFGS updates it in place)."""
    return (x.detach().to(torch.float32).clone(memory_format=torch.contiguous_format)
            .requires_grad_(True))


def lbfgs(x: torch.Tensor, history_size: int, max_eval: int = 8) -> torch.optim.LBFGS:
    """One iteration per `step()` with a strong-Wolfe line search (the loss never goes up),
    and no stopping on small changes: the caller counts the iterations."""
    if not x.is_contiguous():
        raise ValueError("L-BFGS needs a contiguous picture: make it with pixel_variable()")
    return torch.optim.LBFGS([x], lr=1.0, max_iter=1, max_eval=max_eval,
                             history_size=history_size, tolerance_grad=0.0,
                             tolerance_change=0.0, line_search_fn="strong_wolfe")


class CachedClosure:
    """The L-BFGS closure for `objective(x)` (a dict of loss terms with a `"total"`), which
    remembers its last point, gradient and terms.

    `evaluations` counts the objective's real evaluations; `last_terms` holds the terms (as
    floats) of the last one.
    """

    def __init__(self, x: torch.Tensor, objective: Callable[[torch.Tensor], dict]):
        self.x, self.objective = x, objective
        self.last_x: torch.Tensor | None = None
        self.last_grad: torch.Tensor | None = None
        self.last_loss: torch.Tensor | None = None
        self.last_terms: dict[str, float] = {}
        self.evaluations = 0

    def __call__(self) -> torch.Tensor:
        if self.last_x is not None and torch.equal(self.x, self.last_x):
            self.x.grad = self.last_grad.clone()
            return self.last_loss
        self.x.grad = None
        terms = self.objective(self.x)
        loss = terms["total"]
        loss.backward()
        self.evaluations += 1
        self.last_terms = {k: float(v.detach() if torch.is_tensor(v) else v)
                           for k, v in terms.items()}
        self.last_x = self.x.detach().clone()
        self.last_grad = self.x.grad.detach().clone()
        self.last_loss = loss.detach()
        return self.last_loss
