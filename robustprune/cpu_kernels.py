"""CPU kernel pinning: the same params give the same bits on x86-64 machines of one vendor.

Why: on CPU, three libraries pick their kernels for the processor at run time: ATen's own
vectorised kernels (``ATEN_CPU_CAPABILITY``: log_softmax and the cross-entropy backward),
oneDNN for convolutions (``ONEDNN_MAX_CPU_ISA``) and MKL for matrix products (``MKL_CBWR``).
An AVX-512 machine and an AVX2 machine therefore sum in different orders, and the same seed
trains to slightly different weights. Measured on this project's 2-core AMD EPYC (Zen 4,
AVX-512) VM with a short SmallCNN PGD-AT run: forcing any one of the three to AVX2 changes the
final loss by 0.002-0.012 (the size of the difference seen between two VMs of the same kind),
the thread count changes it too, and ``torch.use_deterministic_algorithms`` changes nothing.
Capping all three at AVX2, the instruction set of every x86-64 server of the last decade, and
fixing the thread count makes the kernel choice the same on every machine of one vendor; it
cost nothing measurable for SmallCNN here (10.40 ± 0.14 s against 10.42 ± 0.44 s) and 5-10 %
on a larger convolution. It does not make an Intel and an AMD machine agree: the same code,
data and seed trained a different warm-up model on a 2-core Intel Xeon than on the AMD EPYC
(epoch-1 loss 1.747559 against 1.748688), whether through MKL's per-vendor paths or oneDNN's
cache-size dependent blocking was not told apart (benchmarks/results/reproducibility.md has
the figures). ``MKL_CBWR=COMPATIBLE`` is MKL's documented setting for identical results
across processors; it was not tested across vendors here and made training about 15 % slower
on the Intel machine.

The caps are defaults: a user who sets one of these variables keeps their value
(``ONEDNN_MAX_CPU_ISA=ALL`` etc. trade identity across machines for the fastest kernels), and
``ROBUSTPRUNE_THREADS`` overrides the thread count per process (default 2, divided among the
processes torchrun starts on one machine, ``LOCAL_WORLD_SIZE``; a value the user sets is
taken as is). Each library reads its
variable when it first runs a kernel, so the package sets them on import, before it imports
torch; :func:`pin_cpu_kernels` reports whether the pin took effect.
"""

from __future__ import annotations

import os

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
THREADS_VAR, DEFAULT_THREADS = "ROBUSTPRUNE_THREADS", 2


def pin_cpu_kernels() -> dict[str, str]:
    """Set the kernel caps and the thread count unless the user set them; returns what is in
    force (recorded beside every figure as ``runtime`` in the metrics)."""
    for key, value in PINNED.items():
        os.environ.setdefault(key, value)
    import torch

    # torchrun's processes on one machine share its cores: by default each takes its share
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    threads = int(os.environ.get(THREADS_VAR, max(1, DEFAULT_THREADS // local)))
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return {**{key: os.environ[key] for key in PINNED},
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": str(torch.get_num_threads())}
