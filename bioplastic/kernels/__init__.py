"""The model maths as numba kernels: each module's docstring gives the equations it implements.

activations
    phi and phi' (tanh, relu, ...) as vectorised loops, with their error bounds.
lfrnn
    Euler step and BPTT adjoint of the leaky firing-rate RNN (also the rank-one RNN).
plrnn, lstm
    Forward map and adjoint of the piecewise-linear RNN and of the LSTM cell.
tcr
    The temporal consistency loss and its gradient.
stp
    The Euler step with TCR short-term synaptic plasticity.
eprop
    e-prop's eligibility traces fused with the forward pass.
node_perturbation
    Node perturbation's reward-modulated eligibility sums.

Kernels take and return plain arrays; shapes, dtypes and finiteness are
checked by their callers in :mod:`bioplastic.networks` and
:mod:`bioplastic.rules`. The machine-level code they run on (the
packed-panel product, threads, BLAS glue) is in :mod:`bioplastic.machinery`.
"""
