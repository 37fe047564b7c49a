"""netc: compile small neural-network specs into flat, readable NumPy modules."""

__version__ = "0.1.0"

from netc.compiler import NetError, compile_spec  # noqa: E402

__all__ = ["NetError", "__version__", "compile_spec", "load", "loads", "trace", "train"]


def __getattr__(name: str):
    # load(), loads(), train() and trace() bring in NumPy and the runtime: imported on first
    # use, so that `netc compile` of a cached spec starts in a blink
    if name in ("load", "loads"):
        from netc.runtime import loader

        return getattr(loader, name)
    if name == "train":
        from netc.runtime.train import train

        return train
    if name == "trace":
        from netc.runtime.trace import trace

        return trace
    raise AttributeError(f"module 'netc' has no attribute {name!r}")
