"""Issue 13, bounded compile: the budget is checked in every stage of the compiler, an error
a stage raises without a place gets the place of the statement being worked on, and the
fast style's emitter knows what each line reads without parsing it back.

The blow-ups themselves (deep fns in long chains, thousands of fns, Fibonacci gradients)
run in a subprocess under a memory limit and a timeout in test_bounds.py.
"""

from __future__ import annotations

import itertools
import tempfile
import traceback
from pathlib import Path

import pytest
import sympy as sp
from conftest import SPECS
from fast_oracle import in_place_operands

import netc
from netc.compiler import budget
from netc.compiler.codegen import generate, generate_stages
from netc.compiler.errors import NetError, NetErrors
from netc.compiler.fast import Emitter, Liveness
from netc.compiler.lower import lower
from netc.compiler.parser import parse

DEEP_FN = "fn f(z) = " + "sqrt(1 + " * 6 + "z * tanh(z)" + ")" * 6 + "\n"
CHAIN = DEEP_FN + """fn g(z, c=2) = c * z * sigmoid(z) + relu(z)
input x: [n, 3]
target y: [n, 2]
param W1: [3, 4]
param W2: [4, 2]
x -> W1 -> f -> g(3) -> W2 -> softmax -> ce(y)
"""


# ---- the emitter's records against the text it wrote --------------------------------------

def _spec_texts() -> list[str]:
    return [p.read_text() for p in sorted(SPECS.glob("*.net"))] + [CHAIN]


def test_emitter_records_what_each_line_reads_and_writes(monkeypatch):
    """For every statement of the fast style on every spec: the operands a buffer may take
    over, from the emitter's records, are those read off the emitted lines' syntax trees
    (the compiler no longer parses them; :func:`in_place_operands` still can)."""
    statement = Emitter.statement
    checked = []

    def checking(self, target, expr, shape, dying=frozenset()):
        lines = statement(self, target, expr, shape, dying)
        if lines is not None:
            names = {s.name for s in expr.free_symbols}  # the values a buffer can be
            live = Liveness.of(self.instrs)
            assert len(self.instrs) == len(lines)
            for out in {target, *self.temps}:
                recorded, parsed = live.overwritable(out), in_place_operands(lines, out)
                assert recorded & names == parsed & names, (lines, out)
            checked.append(target)
        return lines

    monkeypatch.setattr(Emitter, "statement", checking)
    for text in _spec_texts():
        generate(lower(parse(text, "t.net")), "fast")  # not compile_spec: not from the cache
    assert len(checked) > 40


def test_liveness_of_recorded_lines():
    """The rule itself, on lines as the emitter records them: an operand is free once the
    output is first written, unless read again after (or by a matrix product writing it)."""
    e = Emitter({sp.Symbol(n, real=True): (3,) for n in ("a", "b", "h")})
    e.lines, e.instrs = [], []
    e._line("np.multiply(a, b, out=g)", "g", "a", "b")
    e._line("np.subtract(g, h, out=g)", "g", "g", "h")
    e._line("np.matmul(h, t, out=u)", "u", "h", "t", elementwise=False)
    live = Liveness.of(e.instrs)
    assert live.overwritable("g") == {"a", "b"}  # h is read after g is first written
    assert live.overwritable("u") == {"a", "b"}  # not matmul's own operands (h)
    assert live.overwritable("nothing") == frozenset()
    assert [i.reads for i in e.instrs] == [{"a", "b"}, {"h"}, {"h", "t"}]


# ---- the budget in every stage ----------------------------------------------------------

class _Clock:
    """A process clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = itertools.count()

    def process_time(self) -> float:
        return float(next(self.now))


def _stopped_in(text: str, seconds: int, monkeypatch, stages: bool = False) -> tuple[str, NetError]:
    """Compile ``text`` (fast style) with a budget of ``seconds`` clock readings; the
    module of the compiler whose check stopped it, and the error."""
    monkeypatch.setattr(budget, "time", _Clock())
    monkeypatch.setenv("NETC_COMPILE_BUDGET", str(seconds))
    monkeypatch.setenv("NETC_CACHE", tempfile.mkdtemp())  # fns derived, not read back
    try:
        with budget.compiling(text):
            graph = lower(parse(text, "t.net"))
            generate_stages(graph) if stages else generate(graph, "fast")
    except NetError as e:
        raised = e.__context__ or e  # lower collects what stopped it into a NetErrors
        frames = [f for f in traceback.extract_tb(raised.__traceback__)
                  if "netc/compiler" in f.filename and not f.filename.endswith("budget.py")]
        return (Path(frames[-1].filename).stem if frames else "lower"), e
    return "", None


def _readings(monkeypatch, stages: bool = False) -> list[int]:
    """Budgets to stop the compile of CHAIN at: each of the first 40 clock readings (lower
    and fn derivation), then 60 spread over the rest."""
    clock = _Clock()
    monkeypatch.setattr(budget, "time", clock)
    monkeypatch.setenv("NETC_COMPILE_BUDGET", "1e9")
    monkeypatch.setenv("NETC_CACHE", tempfile.mkdtemp())
    with budget.compiling(CHAIN):
        graph = lower(parse(CHAIN, "t.net"))
        generate_stages(graph) if stages else generate(graph, "fast")
    total = next(clock.now) - 1  # the last reading of the clock: the last check
    return [*range(min(40, total)), *range(40, total, max(1, total // 60))]


def test_every_stage_checks_the_budget_and_says_where(monkeypatch):
    """Stopping the clock at its readings in turn: every stage is stopped by its own check
    (so no single statement can run past the deadline), each time with one E108 at a
    place in the spec."""
    seen: dict[str, int] = {}
    lines = CHAIN.count("\n")
    for seconds in _readings(monkeypatch):
        stage, e = _stopped_in(CHAIN, seconds, monkeypatch)
        errors = e.errors if isinstance(e, NetErrors) else [e]
        assert [x.code for x in errors] == ["E108"], (seconds, errors)
        assert e.loc is not None and 1 <= e.loc.line <= lines, (seconds, stage)
        seen.setdefault(stage, seconds)
    assert {"lower", "functions", "autodiff", "codegen", "fast"} <= seen.keys(), seen


def test_the_stages_module_checks_the_budget(monkeypatch):
    stops = set()
    for seconds in _readings(monkeypatch, stages=True):
        stage, e = _stopped_in(CHAIN, seconds, monkeypatch, stages=True)
        assert e.code == "E108" and e.loc is not None
        stops.add(stage)
    assert {"lower", "functions", "autodiff", "codegen"} <= stops


def test_E108_in_a_fn_definition_stops_at_once(monkeypatch):
    """Past the deadline inside a definition, lower reports the errors found so far and
    E108, and does not go on to the next statement."""
    text = "fn q(z, z) = z\n" + DEEP_FN + "fn h(z) = z\nparam a: [2]\nloss L = f(sum(a))\n"
    for seconds in range(1, 40):
        stage, e = _stopped_in(text, seconds, monkeypatch)
        if stage == "functions":
            break
    else:
        pytest.fail("no reading stopped fn derivation")
    assert [x.code for x in e.errors] == ["E204", "E108"]
    assert e.errors[1].loc.line == 2  # at the definition being derived


# ---- errors without a place get the statement's --------------------------------------

@pytest.mark.parametrize("style", ["readable", "fast"])
def test_constant_only_the_derivation_makes_is_E419_at_the_statement(style):
    text = "fn f(z, c) = c^2 * z\ninput x: [n, 3]\nparam W: [3, 3]\nloss L = sum(f(x @ W, 1e200))\n"
    with pytest.raises(NetError) as err:
        netc.compile_spec(text, "t.net", style=style)
    e = err.value
    assert e.code == "E419" and e.loc is not None and e.loc.line == 4
    assert str(e).startswith("t.net:4:") and "^" in str(e)


def test_constant_of_a_scalar_fn_call_is_E419_at_the_call():
    text = "fn f(z, c) = c^2 * z\nparam a = 1\nloss L = f(a, 1e200)\n"
    with pytest.raises(NetError) as err:
        netc.compile_spec(text, "t.net")
    assert (err.value.code, err.value.loc.line, err.value.loc.column) == ("E419", 3, 10)
