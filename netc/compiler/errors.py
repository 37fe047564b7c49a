"""One exception hierarchy for everything a user can get wrong.

Every user error is a :class:`NetError` that knows where in the spec it happened. The
CLI prints it as ``file:line:col: error: message [Ecode]``, then the source line with a
caret under the place, then an optional hint. Internal errors are ordinary Python
exceptions: they are bugs and are never caught and dressed up as user errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A span in a source file: 1-based line and column, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int, width: int = 1) -> Loc:
        return Loc(line, column, line, column + max(width, 1))


class NetError(Exception):
    """A problem with the user's spec, data or arguments, with its place and a hint."""

    code = "E000"
    kind = "error"

    def __init__(self, message: str, loc: Loc | None = None, hint: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint
        if code is not None:
            self.code = code
        # the spec the error is in, once the compiler knows it (see attach)
        self.source: str | None = None
        self.filename: str | None = None

    def attach(self, source: str | None, filename: str) -> NetError:
        """Record the spec text and file name the error is in, so that ``str()`` shows the
        place, the source line and the caret as the command line does; returns ``self``."""
        if self.filename is None:
            self.source, self.filename = source, filename
        return self

    def __str__(self) -> str:
        where = self.filename or getattr(self, "path", None)
        return self.format(self.source, where or ("<spec>" if self.loc else "netc"))

    def format(self, source: str | None = None, filename: str = "<spec>") -> str:
        """Render as ``file:line:col: error: message [code]`` plus caret and hint lines."""
        if self.loc is None:
            head = f"{filename}: error: {self.message} [{self.code}]"
            return head + (f"\n  hint: {self.hint}" if self.hint else "")
        loc = self.loc
        lines = [f"{filename}:{loc.line}:{loc.column}: error: {self.message} [{self.code}]"]
        if source is not None:
            # lines as the parser counts them (splitlines() would also split at \x1e and co.)
            src_lines = source.split("\n")
            # a place past the last line (an empty spec, the end of the file) shows empty
            text = src_lines[loc.line - 1] if loc.line <= len(src_lines) else ""
            # one column per character: tabs and control characters shown as one space
            text = "".join(" " if c == "\t" or not c.isprintable() else c
                           for c in text.rstrip("\r"))
            width = loc.end_column - loc.column if loc.end_line == loc.line else len(text)
            width = max(1, min(width, len(text) - loc.column + 1))
            lines.append("    " + text)
            lines.append("    " + " " * (loc.column - 1) + "^" * width)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class NetErrors(NetError):
    """Several independent errors found in one run, reported together."""

    def __init__(self, errors: list[NetError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.loc, first.hint, first.code)
        self.errors = errors

    def attach(self, source: str | None, filename: str) -> NetError:
        for e in self.errors:
            e.attach(source, filename)
        return super().attach(source, filename)

    def format(self, source: str | None = None, filename: str = "<spec>") -> str:
        return "\n".join(e.format(source, filename) for e in self.errors)


class NetSyntaxError(NetError):
    code = "E101"


class NetNameError(NetError):
    code = "E201"


class NetShapeError(NetError):
    code = "E301"


class NetValueError(NetError):
    code = "E401"


class NetTypeError(NetError):
    code = "E501"


class NetDataError(NetError):
    """Bad data file or array handed to the runtime."""

    code = "E601"


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.5)
    return f"did you mean '{matches[0]}'?" if matches else None
