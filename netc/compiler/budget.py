"""The compile budget: a deadline that every stage of the compiler checks as it goes.

Each symbolic step is bounded where it could blow up (powers of numbers, polynomial
algebra, nesting, the spec's size), so a compile is polynomial in the spec. The deadline
is the backstop for what that leaves: it stops a compile that runs past it with one error
at the statement being worked on, instead of running for minutes. It is CPU time of the
compiling process (another program's load on the machine does not make a spec fail that
compiles in time on its own; a compile is one thread of pure Python), checked
by the compiler's own loops (no signal: those break in threads and notebooks): lower
before each statement and fn definition, fn derivation before each partial derivative,
autodiff before each node, codegen before each line it writes in either style, and the
fast style's emitter at every subexpression. The README's "Limits" states the budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from netc.compiler.errors import Loc, NetError, NetErrors, NetSyntaxError

SECONDS = 7.0  # a spec under SMALL characters stops here: with imports and the last
# stretch between two checks (up to 2 s measured), within 10 s
SMALL = 100_000
# A spec with more lines than that allows, or past SMALL, gets an allowance that grows with
# its size: 5 ms a line (the statement-heavy fuzz specs, 5,000 lines in 90 KB, compile at
# 2-5 ms a line) or 0.1 ms a character, whichever is more
SECONDS_PER_LINE = 0.005
SECONDS_PER_CHAR = 0.0001

_deadline: ContextVar[float | None] = ContextVar("netc_compile_deadline", default=None)
_where: ContextVar[Loc | None] = ContextVar("netc_compile_where", default=None)


class OverBudget(NetSyntaxError):
    """The compile ran past its deadline: it stops here, whatever else was found."""

    code = "E108"


def allowed(text: str) -> float:
    """Seconds a spec with this text may take: $NETC_COMPILE_BUDGET where that is a number
    (0 stops every compile at its first statement), else :data:`SECONDS`, or the allowance
    per line or per character where that is more."""
    try:
        return float(os.environ["NETC_COMPILE_BUDGET"])
    except (KeyError, ValueError):
        pass
    return max(SECONDS, SECONDS_PER_LINE * text.count("\n"), SECONDS_PER_CHAR * len(text))


@contextmanager
def compiling(text: str) -> Iterator[None]:
    """Run the body under the budget of a spec with this text."""
    token = _deadline.set(time.process_time() + allowed(text))
    try:
        yield
    finally:
        _deadline.reset(token)


def check(loc: Loc | None = None) -> None:
    """Raise if the compile in progress is past its deadline; ``loc`` is where it is (by
    default the place of the innermost :func:`at`)."""
    deadline = _deadline.get()
    if deadline is not None and time.process_time() > deadline:
        raise OverBudget("the spec takes longer to compile than netc allows; stopped here",
                         loc or _where.get(), "split large functions and expressions into "
                         "smaller named steps", code="E108")


@contextmanager
def at(loc: Loc | None) -> Iterator[None]:
    """Work on the part of the spec at ``loc``: check the deadline first and as the body
    goes (:func:`check` without a place means this one), and give an error the body
    raises without a place this one: a constant only the derivation makes (E419 from the
    printer) is reported at the statement whose code was being written. Without a place
    (a prelude fn's helper: small, and fixed) nothing is checked."""
    if loc is not None:
        check(loc)
    token = _where.set(loc)
    try:
        yield
    except NetError as e:
        if e.loc is None and not isinstance(e, NetErrors):
            e.loc = loc
        raise
    finally:
        _where.reset(token)
