"""Trace a spec: every staged value and every gradient, intermediates included.

The lecture labels each node of a circuit with its forward value and its gradient
(``f = (x + y) z`` at -2, 5, -4: ``q = 3``, ``f = -12``, ``grad_q = -4``). :func:`trace`
does that for any spec. It compiles the spec's *stages module* (every forward value and
every line of ``backward()`` as a function of its own, as ``netc check --stages`` uses),
runs the forward stages from the params and inputs, then the backward stages with the
loss's gradient seeded at 1, and keeps one :class:`Record` per value and per gradient:
its name, what it is the gradient of, the names it is computed from, its shape, dtype,
spec line and value. The records are what a drawing of the graph or a page of the
derivation needs: leaves (params, inputs, targets, dims) and stages with their arguments
are the graph's nodes and edges, each with its value and gradient.

Values nobody gave come as ``netc check`` takes them: the spec's own initial params
(``init_params(seed)``) and seeded random inputs (:func:`~netc.runtime.gradcheck.sample_inputs`).
Every name, value and shape given is checked first; a problem is one
:class:`~netc.compiler.errors.NetDataError`.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from netc.compiler.errors import NetDataError, did_you_mean
from netc.runtime.data import check_data, data_error
from netc.runtime.gradcheck import sample_inputs

__all__ = ["Record", "Trace", "parse_value", "trace"]

SMALL = 12  # entries an array may have and still be shown whole in the text table
SHOWN = 4  # entries a summary of a larger array shows


@dataclass(frozen=True, eq=False)
class Record:
    """One value or gradient of the computation, as a row of the trace.

    Attributes:
        name: Its name in the generated code (``q``, ``grad_q``; a compiler-made
            intermediate is named after the value it is part of, ``f_1``).
        kind: ``param``, ``input``, ``target``, ``dim`` (the leaves), ``value`` (a stage
            of forward), ``loss`` (the last one) or ``grad`` (a stage of backward).
        of: For a gradient, the value it is the gradient of; None for a value.
        args: The names the stage reads (its edges in the graph); ``()`` for a leaf.
            The seed of backward, the loss's own gradient, reads nothing.
        shape: Its concrete shape; ``()`` for a scalar.
        dtype: NumPy's name of its dtype (``float64``; ``int64`` for class indices).
        line: The spec line it comes from (a leaf's: its declaration).
        source: That line's text.
        value: The value itself, read-only.
    """

    name: str
    kind: str
    of: str | None
    args: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    line: int
    source: str
    value: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """Everything in the record, as JSON takes it (the value as nested lists)."""
        return {"name": self.name, "kind": self.kind, "of": self.of, "args": list(self.args),
                "shape": list(self.shape), "dtype": self.dtype, "line": self.line,
                "source": self.source, "value": _plain(self.value)}


class Trace:
    """The records of one run of a spec: forward values in order, then gradients.

    ``trace["grad_q"]`` is a record by name, ``iter(trace)`` and ``len(trace)`` go over
    all of them; :attr:`loss` and :attr:`grads` are what ``forward()`` and ``backward()``
    of the generated module return. In a notebook it shows as a table.
    """

    def __init__(self, spec: str, records: tuple[Record, ...], loss: str,
                 grad_names: Mapping[str, str]) -> None:
        # a file name may hold a newline or other control characters: shown escaped, so
        # that the tables' first line stays one line
        self.spec = "".join(c if c.isprintable() else repr(c)[1:-1] for c in spec)
        self.records = records
        self.forward = tuple(r for r in records if r.kind != "grad")
        self.backward = tuple(r for r in records if r.kind == "grad")
        self._by_name = {r.name: r for r in records}
        self._loss = loss
        self._grad_names = dict(grad_names)  # spec name -> the record of its gradient

    def __getitem__(self, name: str) -> Record:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def loss(self) -> float:
        """The loss, as ``forward()`` returns it."""
        return float(self._by_name[self._loss].value)

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradients ``backward()`` returns, by the spec's names of params and inputs."""
        return {spec: self._by_name[grad].value for spec, grad in self._grad_names.items()}

    def format_text(self) -> str:
        """The lecture's tables: forward, then backward, then the spec lines they cite."""
        head = f"trace of {self.spec}: loss {self._loss} = {_number(self.loss)}"
        fw = _table(("name", "kind", "shape", "line", "value"),
                    [(r.name, r.kind, _shape(r.shape), str(r.line), _shown(r.value))
                     for r in self.forward])
        bw = _table(("name", "of", "shape", "line", "value"),
                    [(r.name, r.of or "", _shape(r.shape), str(r.line), _shown(r.value))
                     for r in self.backward])
        cited = sorted({(r.line, r.source) for r in self.records})
        width = max(len(str(line)) for line, _ in cited)
        lines = [f"{line:>{width}}  {text}" for line, text in cited]
        return "\n".join([head, "", "forward", fw, "", "backward", bw, "", "spec lines",
                          *lines]) + "\n"

    def to_json(self) -> str:
        """Every record in full, arrays as nested lists; strict JSON (NaN as "NaN")."""
        doc = {"spec": self.spec, "loss": _plain(np.asarray(self.loss)),
               "forward": [r.as_dict() for r in self.forward],
               "backward": [r.as_dict() for r in self.backward]}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        """One row per record, in order; a value is JSON text (arrays as nested lists)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["pass", "name", "kind", "of", "args", "shape", "dtype", "line", "source",
                    "value"])
        for r in self.records:
            w.writerow(["backward" if r.kind == "grad" else "forward", r.name, r.kind,
                        r.of or "", " ".join(r.args), json.dumps(list(r.shape)), r.dtype,
                        r.line, r.source, json.dumps(_plain(r.value), allow_nan=False)])
        return buf.getvalue()

    def __repr__(self) -> str:
        return self.format_text()

    def _repr_html_(self) -> str:
        def rows(records: tuple[Record, ...], second) -> str:
            return "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
                    r.name, second(r), _shape(r.shape), str(r.line), _shown(r.value)))
                + f"<td><code>{html.escape(r.source)}</code></td></tr>" for r in records)

        def table(title: str, second: str, body: str) -> str:
            cols = ("name", second, "shape", "line", "value", "spec line")
            return (f"<table><caption>{title}</caption><tr>"
                    + "".join(f"<th>{c}</th>" for c in cols) + f"</tr>{body}</table>")

        return (f"<p>trace of <code>{html.escape(self.spec)}</code>: loss "
                f"{html.escape(self._loss)} = {_number(self.loss)}</p>"
                + table("forward", "kind", rows(self.forward, lambda r: r.kind))
                + table("backward", "of", rows(self.backward, lambda r: r.of or "")))


# --------------------------------------------------------------------------- formatting


def _number(v: Any) -> str:
    """A scalar in full: the repr of a Python float (it reads back exactly), or an int."""
    return str(int(v)) if isinstance(v, np.integer | int) else repr(float(v) + 0.0)


def _short(v: Any) -> str:
    return str(int(v)) if isinstance(v, np.integer | int) else f"{float(v) + 0.0:.6g}"


def _shown(value: np.ndarray) -> str:
    """Scalars in full, small arrays whole (6 digits), larger ones summarised."""
    if value.ndim == 0:
        return _number(value[()])
    if value.size <= SMALL:
        return _nested(value.tolist())
    flat = value.ravel()
    stats = (f"min {_short(flat.min())}, max {_short(flat.max())}, "
             f"mean {_short(flat.mean())}" if flat.size else "empty")
    first = ", ".join(_short(v) for v in flat[:SHOWN].tolist())
    return f"{stats}; first [{first}, ...]"


def _nested(v: Any) -> str:
    return "[" + ", ".join(_nested(x) for x in v) + "]" if isinstance(v, list) else _short(v)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                     for cells in [header, tuple("-" * w for w in widths), *body])


def _plain(value: np.ndarray) -> Any:
    """A value as JSON numbers and nested lists; non-finite numbers as strings."""
    def finite(v: Any) -> Any:
        if isinstance(v, list):
            return [finite(x) for x in v]
        if isinstance(v, float) and not math.isfinite(v):
            return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
        return v
    return finite(np.asarray(value).tolist())


# --------------------------------------------------------------------------- values


def parse_value(name: str, text: str) -> np.ndarray:
    """``--set NAME=TEXT``'s value: a JSON number or nested list of numbers; never eval'd.

    A plain number Python's ``float`` reads (``.5``, ``1.``) is taken too. Raises
    NetDataError (E603) for anything else: text, booleans, null, objects, ragged rows.
    """
    hint = f"give a number or a nested list of numbers, e.g. --set {name}=-2 or " \
           f"--set '{name}=[[1, 2], [3, 4]]'"
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        try:
            value = float(text)
        except ValueError:
            raise data_error(f"--set {name}: {text[:40]!r} is not a number or a list of "
                             "numbers", "E603", "netc", hint) from None
    if not _numbers_only(value):
        raise data_error(f"--set {name}: {text[:40]!r} holds something that is not a number",
                         "E603", "netc", hint)
    try:
        with np.errstate(over="ignore"):
            return np.asarray(value, dtype=np.int64 if _all_ints(value) else np.float64)
    except (ValueError, OverflowError) as e:
        why = "a number too large" if isinstance(e, OverflowError) else "rows of " \
              "different lengths"
        raise data_error(f"--set {name}: {text[:40]!r} has {why}", "E603", "netc",
                         hint) from None


def _no_constant(word: str) -> None:
    raise ValueError(f"{word} is not a number")


def _numbers_only(v: Any, depth: int = 0) -> bool:
    if isinstance(v, list):
        return depth < 32 and all(_numbers_only(x, depth + 1) for x in v)
    return isinstance(v, int | float) and not isinstance(v, bool)


def _all_ints(v: Any) -> bool:
    if isinstance(v, list):
        return all(_all_ints(x) for x in v)
    return isinstance(v, int) and abs(v) < 2**63


# --------------------------------------------------------------------------- the run


def trace(net: ModuleType | str | os.PathLike, params: Mapping[str, Any] | None = None,
          inputs: Mapping[str, Any] | None = None, *, seed: int = 0,
          origin: str = "", shown: str | None = None) -> Trace:
    """Run the spec's stages and record every value and every gradient.

    Args:
        net: A generated module (``netc.load(...)``) or the path of a spec.
        params: Param values by the spec's names; those not given are the spec's
            initial values, ``init_params(seed)``.
        inputs: Inputs and targets by name; those not given are drawn as ``netc check``
            draws them (seeded by ``seed``), their symbolic dims bound by those given.
        seed: Seeds the initial params and the drawn inputs.
        origin: Where the values came from, put before a name in an error (``"--set "``).
        shown: The spec's name in the output (default: its path, or the module's name).

    Raises:
        NetError: for a spec that does not compile; NetDataError for an unknown name, a
            value that is not a number, a wrong shape or bad target values.
    """
    from netc.compiler import compile_stages
    from netc.runtime.loader import load_source, module_name
    from netc.runtime.train import _spec_text, load_net

    if isinstance(net, ModuleType):
        # the net's name opens the module's docstring ("gate: forward and backward ...")
        text, filename = _spec_text(net), (net.__doc__ or "spec").split(":", 1)[0]
        if text is None:
            raise data_error("this module does not quote its spec: trace needs a module "
                             "netc generated", "E601", "netc")
    else:
        filename = str(net)
        net, text, _ = load_net(net)
    stem = module_name(Path(filename).stem)
    stages = load_source(compile_stages(text, f"{stem}.net", tuple(net.GRAD_INPUTS)),
                         "trace_" + stem)
    given_params, given_inputs = _split(net, params or {}, inputs or {}, origin)
    values = _leaves(net, stages, given_params, given_inputs, seed, origin)
    return _run(net, stages, text, shown or filename, values)


def _split(net: ModuleType, params: Mapping[str, Any], inputs: Mapping[str, Any],
           origin: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The values given, as arrays; an unknown name is E602."""
    known = [*net.PARAMS, *net.INPUTS]
    for name in [*params, *inputs]:
        if name not in known:
            raise data_error(
                f"{origin}{name}: the spec has no param, input or target '{name}'", "E602",
                "netc", did_you_mean(str(name), known) or
                f"params and inputs can be set; the spec's are {', '.join(known) or 'none'}")
    misplaced = [n for n in params if n not in net.PARAMS] + \
                [n for n in inputs if n not in net.INPUTS]
    if misplaced:
        raise data_error(f"'{misplaced[0]}' is given among the wrong kind of values (params "
                         "are params, inputs and targets are inputs)", "E602", "netc")
    return ({k: _array(k, v, origin) for k, v in params.items()},
            {k: _array(k, v, origin) for k, v in inputs.items()})


def _array(name: str, value: Any, origin: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise data_error(f"{origin}{name}: not an array of numbers", "E603", "netc") from None
    if a.dtype.kind not in "biuf":
        raise data_error(f"{origin}{name}: holds {a.dtype}, not numbers", "E603", "netc")
    return a


def _leaves(net: ModuleType, stages: ModuleType, params: dict[str, np.ndarray],
            inputs: dict[str, np.ndarray], seed: int, origin: str) -> dict[str, np.ndarray]:
    """The params, inputs, targets and dims the stages start from, by their Python names."""
    full = {k: np.asarray(v, dtype=np.float64) for k, v in net.init_params(seed).items()}
    for name, a in params.items():
        want = tuple(net.PARAMS[name])
        if a.shape != want:
            raise data_error(f"{origin}{name}: param '{name}' has shape {a.shape}, but the "
                             f"spec declares {name}: {_shape(want)}", "E604", "netc")
        full[name] = a.astype(np.float64)
        if not np.all(np.isfinite(full[name])):
            raise data_error(f"{origin}{name}: param '{name}' has NaN or infinite values "
                             "(or numbers past float64)", "E605", "netc")
    env = {py: full[spec] for spec, py in zip(net.PARAMS, stages.PARAMS, strict=True)}
    if net.INPUTS:
        drawn = sample_inputs(net, _bound_dims(net, inputs, origin), seed)
        try:
            data = check_data(net, {**drawn, **inputs}, "netc")
        except NetDataError as e:  # named by where the values came from, not as a file
            raise data_error(f"{_lead(origin)}{e.message}", e.code, "netc", e.hint) from None
        if data.stacked and data.n > 1:
            raise data_error(f"{_lead(origin)}the values hold {data.n} examples; the spec takes "
                             "one at a time", "E604", "netc",
                             "give one example, of the declared shape")
        env.update(data.batch(None))
    for dim, tensor, axis in stages.DIMS:
        env[dim] = np.asarray(env[tensor].shape[axis])
    return env


def _lead(origin: str) -> str:
    """``origin`` as the start of a message that names no array of its own."""
    return f"{origin.strip()}: " if origin.strip() else ""


def _bound_dims(net: ModuleType, inputs: dict[str, np.ndarray], origin: str) -> dict[str, int]:
    """The symbolic dims the given inputs fix, so that the drawn ones agree with them."""
    dims: dict[str, int] = {}
    for name, a in inputs.items():
        decl = tuple(net.INPUTS[name])
        if a.ndim != len(decl):
            continue  # check_data words the wrong rank
        for d, size in zip(decl, a.shape, strict=True):
            if isinstance(d, str):
                if size < 1:
                    raise data_error(f"{origin}{name}: has no examples (dim {d} is 0)",
                                     "E606", "netc")
                dims.setdefault(d, int(size))
    return dims


def _run(net: ModuleType, stages: ModuleType, text: str, filename: str,
         env: dict[str, np.ndarray]) -> Trace:
    """Run the stages from ``env`` (the leaves) and record each value, then each gradient."""
    spec_lines = text.split("\n")

    def record(name: str, kind: str, of: str | None, args: tuple[str, ...], value: Any,
               line: int) -> Record:
        a = np.array(value)  # a copy of its own, frozen with the record
        a.setflags(write=False)
        source = spec_lines[line - 1].strip() if 0 < line <= len(spec_lines) else ""
        return Record(name, kind, of, tuple(args), a.shape, a.dtype.name, line, source, a)

    decl_lines = _declaration_lines(text, filename)
    py_to_spec = dict(zip(stages.PARAMS, net.PARAMS, strict=True))
    leaves = [record(py, "param", None, (), env[py], decl_lines.get(spec, 0))
              for py, spec in py_to_spec.items()]
    leaves += [record(name, "target" if name in net.TARGETS else "input", None, (),
                      env[name], decl_lines.get(name, 0)) for name in net.INPUTS]
    leaves += [record(dim, "dim", None, (), env[dim], decl_lines.get(tensor, 0))
               for dim, tensor, _ in stages.DIMS]
    forward = []
    with np.errstate(all="ignore"):  # an overflow is shown as inf, as forward() gives it
        for name, fn, args, line in stages.FORWARD:
            env[name] = np.asarray(fn(*(env[a] for a in args)))
            kind = "loss" if name == stages.LOSS else "value"
            forward.append(record(name, kind, None, args, env[name], line))
        loss_line = forward[-1].line if forward else 0
        # the seed is read by no stage (each treats it as 1), so it stays out of env: a
        # param may well be named grad_f, and the stages must read that one
        taken = {*env, *(row[0] for row in stages.BACKWARD)}
        seed_name = f"grad_{stages.LOSS}"
        while seed_name in taken:
            seed_name += "_"
        one = np.ones_like(env[stages.LOSS], dtype=np.float64)
        backward = [record(seed_name, "grad", stages.LOSS, (), one, loss_line)]
        for name, fn, args, of, line in stages.BACKWARD:
            got = np.asarray(fn(*(env[a] for a in args)), dtype=np.float64)
            env[name] = np.broadcast_to(got, np.shape(env[of]))
            backward.append(record(name, "grad", of, args, env[name], line))
    # what backward() returns: the gradients of the params and of the inputs asked for
    returned = {**py_to_spec, **{name: name for name in net.GRAD_INPUTS}}
    grads = {returned[r.of]: r.name for r in backward if r.of in returned}
    return Trace(filename, (*leaves, *forward, *backward), stages.LOSS, grads)


def _declaration_lines(text: str, filename: str) -> dict[str, int]:
    """The line of each param, input and target declaration, by the spec's name."""
    from netc.compiler import ast
    from netc.compiler.parser import parse

    return {s.name: s.loc.line for s in parse(text, filename).stmts
            if isinstance(s, ast.TensorDecl)}
