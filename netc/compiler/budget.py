"""The compile budget: a deadline that the compiler's loops check between statements.

Each symbolic step is bounded where it could blow up (powers of numbers, polynomial
algebra, nesting, the spec's size), so a compile is polynomial in the spec. The deadline
is the backstop for what that leaves: it stops a compile that runs past it with one error
at the statement being worked on, instead of running for minutes. It is a time, checked
by the compiler's own loops (no signal: those break in threads and notebooks), so it is
generous: the README's "Limits" states the budget a spec under 100 KB stays within.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from netc.compiler.errors import Loc, NetSyntaxError

SECONDS = 30.0  # for any spec, plus the allowance per line below
SECONDS_PER_LINE = 0.005  # the statement-heavy fuzz specs are tested at 2-5 ms per line

_deadline: ContextVar[float | None] = ContextVar("netc_compile_deadline", default=None)


def allowed(text: str) -> float:
    """Seconds a spec with this text may take: $NETC_COMPILE_BUDGET where that is a number
    (0 stops every compile at its first statement), else the rule above."""
    try:
        return float(os.environ["NETC_COMPILE_BUDGET"])
    except (KeyError, ValueError):
        return SECONDS + SECONDS_PER_LINE * text.count("\n")


@contextmanager
def compiling(text: str) -> Iterator[None]:
    """Run the body under the budget of a spec with this text."""
    token = _deadline.set(time.monotonic() + allowed(text))
    try:
        yield
    finally:
        _deadline.reset(token)


def check(loc: Loc | None) -> None:
    """Raise if the compile in progress is past its deadline; ``loc`` is where it is."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise NetSyntaxError("the spec takes longer to compile than netc allows; stopped "
                             "here", loc, "split large functions and expressions into "
                             "smaller named steps", code="E108")
