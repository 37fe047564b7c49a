"""netc: compile small neural-network specs into flat, readable NumPy modules."""

__version__ = "0.1.0"

from netc.compiler import NetError, compile_spec  # noqa: E402
from netc.runtime.loader import load  # noqa: E402
from netc.runtime.train import train  # noqa: E402

__all__ = ["NetError", "__version__", "compile_spec", "load", "train"]
