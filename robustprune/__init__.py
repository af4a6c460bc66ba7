"""robustprune: robust training made cheaper by spending adversarial compute where it matters.

Public API: :func:`load_model` (the saved-model contract) and the library modules ``data``,
``models``, ``attacks``, ``objectives``, ``selection``, ``training``, ``evaluation``, ``cost``.
"""

from robustprune.models import load_model

__all__ = ["load_model"]
__version__ = "0.1.0"
