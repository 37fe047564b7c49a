"""The netc compiler: spec text -> parse tree -> IR -> backward plan -> NumPy module."""

from __future__ import annotations

from netc.compiler.errors import NetError


def compile_spec(text: str, filename: str = "<spec>", wrt: tuple[str, ...] = ()) -> str:
    """Compile spec text to the source of a NumPy module; raise NetError on bad input."""
    from netc.compiler.codegen import generate
    from netc.compiler.lower import lower
    from netc.compiler.parser import parse

    return generate(lower(parse(text, filename), wrt=tuple(wrt)))


def compile_stages(text: str, filename: str = "<spec>", wrt: tuple[str, ...] = ()) -> str:
    """Compile spec text to a debugging module with one function per stage (see
    :func:`netc.compiler.codegen.generate_stages`)."""
    from netc.compiler.codegen import generate_stages
    from netc.compiler.lower import lower
    from netc.compiler.parser import parse

    return generate_stages(lower(parse(text, filename), wrt=tuple(wrt)))


__all__ = ["NetError", "compile_spec", "compile_stages"]
