"""robustprune: robust training made cheaper by spending adversarial compute where it matters.

Public API: :func:`load_model` (the saved-model contract) and the library modules ``data``,
``models``, ``attacks``, ``objectives``, ``selection``, ``training``, ``evaluation``, ``cost``.
"""

from robustprune.cpu_kernels import pin_cpu_kernels

pin_cpu_kernels()  # before torch runs any kernel: see robustprune/cpu_kernels.py

from robustprune.models import load_model  # noqa: E402

__all__ = ["load_model"]
__version__ = "0.1.0"
