"""neurosim: brain-like and artificial networks learning side by side.

``import neurosim`` stays fast: it never imports Brian2 (only ``neurosim.snn`` and
``neurosim.sleep`` do).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
