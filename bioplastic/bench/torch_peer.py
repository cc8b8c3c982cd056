"""The PyTorch peer: the same LFRNN, loss and optimiser, written as people write torch.

Two peers: :class:`TorchLFRNN`, a careful Euler loop over T with torch ops
(autograd, ``clip_grad_norm_``, ``torch.optim.Adam``), and
:class:`TorchModuleLFRNN`, the same network as an idiomatic ``nn.Module``.
:func:`verify_peer` checks that a peer computes what bioplastic computes
before anything is timed. Torch is optional: :func:`import_torch` gives None
when it is missing.
"""
from __future__ import annotations

import numpy as np

from ..errors import BioplasticError
from ..networks.lfrnn import LFRNN
from ..training.objective import loss_and_grads
from .cases import LAMBDA_TCR, LR, MAX_NORM

#: Forward-output tolerance of the torch peer, by dtype.
OUTPUT_ATOL = {"float64": 1e-6, "float32": 1e-3}
#: Relative tolerance (on the global norm) for loss and gradients of the peer.
GRAD_RTOL = {"float64": 1e-6, "float32": 1e-2}


class PeerMismatchError(BioplasticError, RuntimeError):
    """The PyTorch peer does not compute what bioplastic computes."""


def import_torch():
    """Return the ``torch`` module, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchLFRNN:
    """Plain PyTorch LFRNN with the same equations, loss and optimiser.

    ``x[t+1] = (1-a) x[t] + a (r[t] W^T + u[t] W_in^T + b)``, ``r = tanh(x)``,
    ``y[t] = r[t+1] W_out^T + b_out``; loss = masked MSE + lambda * mean
    squared rate change. The input drive and the readout are computed for all
    steps in one matmul each, as bioplastic does.
    """

    def __init__(self, torch, params, alpha, dtype, lr=LR):
        self.torch = torch
        self.alpha = float(alpha)
        self.tdtype = getattr(torch, np.dtype(dtype).name)
        self.params = {k: torch.tensor(np.array(params[k]), dtype=self.tdtype, requires_grad=True)
                       for k in LFRNN.param_names}
        self.opt = torch.optim.Adam(list(self.params.values()), lr=lr)

    def tensor(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a), dtype=self.tdtype)

    def forward(self, u):
        """Rates (T+1, B, N) and outputs (T, B, O) for inputs ``u`` (T, B, I)."""
        torch, p, a = self.torch, self.params, self.alpha
        T, B, _ = u.shape
        WT = p["W"].T
        # unbind, not drive[t]: indexing's backward would write a zero-filled
        # (T, B, N) gradient per step, O(T^2) work that would slow the peer.
        drive = (u @ p["W_in"].T + p["b"]).unbind(0)
        x = torch.zeros(B, p["W"].shape[0], dtype=self.tdtype)
        r = torch.tanh(x)
        rates = [r]
        for t in range(T):
            x = (1 - a) * x + a * (r @ WT + drive[t])
            r = torch.tanh(x)
            rates.append(r)
        R = torch.stack(rates)
        y = R[1:] @ p["W_out"].T + p["b_out"]
        return R, y

    def loss(self, u, targets, mask, lambda_tcr=LAMBDA_TCR):
        R, y = self.forward(u)
        err = (y - targets) * mask
        l_task = (err * err).sum() / mask.sum().clamp(min=1.0)
        d = R[1:] - R[:-1]
        l_tcr = (d * d).mean()
        return l_task + lambda_tcr * l_tcr

    def step(self, u, targets, mask, lambda_tcr=LAMBDA_TCR, max_norm=MAX_NORM):
        """One BPTT iteration: forward, loss, backward, clip, Adam."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(u, targets, mask, lambda_tcr)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(list(self.params.values()), max_norm)
        self.opt.step()
        return loss


class TorchModuleLFRNN(TorchLFRNN):
    """The same network written as an idiomatic ``torch.nn.Module``.

    This is how tutorials and task toolboxes usually write a rate RNN:
    ``nn.Linear`` layers for the recurrent, input and output weights, the
    input read as ``u[t]`` inside the loop, the readout applied at every
    step, and rates and outputs stacked at the end::

        x = x + a * (-x + rec(r) + inp(u[t])),   r = tanh(x),   y[t] = out(r)

    It computes the same loss and gradients as :class:`TorchLFRNN` (checked
    like it), but with more work per step, so it is the slower peer. SPEC 10
    quotes about 80 ms per BPTT iteration at N=100 for its PyTorch peer,
    closer to this one than to the careful loop.
    """

    def __init__(self, torch, params, alpha, dtype, lr=LR):
        nn = torch.nn
        self.torch = torch
        self.alpha = float(alpha)
        self.tdtype = getattr(torch, np.dtype(dtype).name)
        O, N = np.shape(params["W_out"])
        I = np.shape(params["W_in"])[1]
        module = nn.ModuleDict({"rec": nn.Linear(N, N, bias=False), "inp": nn.Linear(I, N),
                                "out": nn.Linear(N, O)}).to(self.tdtype)
        with torch.no_grad():
            for layer, attr, name in (("rec", "weight", "W"), ("inp", "weight", "W_in"), ("inp", "bias", "b"),
                                      ("out", "weight", "W_out"), ("out", "bias", "b_out")):
                getattr(module[layer], attr).copy_(torch.as_tensor(np.array(params[name]), dtype=self.tdtype))
        self.module = module
        self.params = {"W": module["rec"].weight, "W_in": module["inp"].weight, "b": module["inp"].bias,
                       "W_out": module["out"].weight, "b_out": module["out"].bias}
        self.opt = torch.optim.Adam(module.parameters(), lr=lr)

    def forward(self, u):
        """Rates (T+1, B, N) and outputs (T, B, O) for inputs ``u`` (T, B, I)."""
        torch, m, a = self.torch, self.module, self.alpha
        T, B, _ = u.shape
        x = torch.zeros(B, m["rec"].weight.shape[0], dtype=self.tdtype)
        r = torch.tanh(x)
        rates, outputs = [r], []
        for t in range(T):
            x = x + a * (-x + m["rec"](r) + m["inp"](u[t]))
            r = torch.tanh(x)
            rates.append(r)
            outputs.append(m["out"](r))
        return torch.stack(rates), torch.stack(outputs)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def verify_peer(torch, net, params, batch, peer_class=None) -> dict:
    """Check that a torch peer (default :class:`TorchLFRNN`) reproduces
    bioplastic on one batch.

    Compares outputs (absolute, ``OUTPUT_ATOL``), loss and gradients of every
    parameter (relative, ``GRAD_RTOL``) for the same weights.

    Returns
    -------
    dict with ``max_output_diff``, ``loss_rel`` and ``grad_rel`` (worst array).

    Raises
    ------
    PeerMismatchError
        If any difference exceeds its tolerance.
    """
    dtype = net.dtype.name
    peer = (peer_class or TorchLFRNN)(torch, params, net.alpha, dtype)
    u, tgt, mask = (peer.tensor(a) for a in (batch.inputs, batch.targets, batch.loss_mask))
    with torch.no_grad():
        _, y = peer.forward(u)
    ours = net.forward(params, batch.inputs).outputs
    diff = float(np.max(np.abs(y.numpy() - ours))) if ours.size else 0.0
    if not diff <= OUTPUT_ATOL[dtype]:
        raise PeerMismatchError(f"torch peer outputs differ from bioplastic by {diff:.3g} "
                                f"(> {OUTPUT_ATOL[dtype]:g}, {dtype})")
    loss = peer.loss(u, tgt, mask)
    loss.backward()
    ev = loss_and_grads(net, params, batch, lambda_tcr=LAMBDA_TCR)
    loss_rel = abs(float(loss.detach()) - ev.loss) / max(abs(ev.loss), 1e-30)
    grad_rel = {k: _rel(peer.params[k].grad.numpy(), ev.grads[k]) for k in LFRNN.param_names}
    worst = max(grad_rel, key=grad_rel.get)
    tol = GRAD_RTOL[dtype]
    if not loss_rel <= tol or not grad_rel[worst] <= tol:
        raise PeerMismatchError(f"torch peer loss/gradients differ from bioplastic ({dtype}): loss "
                                f"rel. error {loss_rel:.3g}, {worst} grad rel. error {grad_rel[worst]:.3g} "
                                f"(tolerance {tol:g})")
    return {"max_output_diff": diff, "loss_rel": loss_rel, "grad_rel": grad_rel[worst]}
