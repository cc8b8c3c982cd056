"""Machine-level machinery under the model kernels: the packed-panel micro-kernel,
the row-block thread pool and its spin-waits, BLAS glue, vector-width hints, bit
casts and the vectorised Gaussian sampler.

Nothing here knows about neurons; :mod:`bioplastic.kernels` holds the model
maths that runs on it. See ``README.md`` in this folder for what each module
buys (measured) and how to check a change. The user-facing controls are in
:mod:`bioplastic.machinery.threads` (``set_kernel_threads``,
``single_threaded``, ``set_spin_wait``, ``idle_workers``).
"""
