"""Errors of the training commands: options, run directories, resuming (codes E7xx)."""

from __future__ import annotations

import os

from netc.compiler.errors import NetError

__all__ = ["NetTrainError", "train_error"]


class NetTrainError(NetError):
    """A training option or run directory that cannot be used."""

    code = "E701"


def train_error(message: str, code: str = "E701", hint: str | None = None,
                path: str | os.PathLike | None = None) -> NetTrainError:
    """A :class:`NetTrainError`; ``path`` (a run directory) is what the CLI prints first."""
    err = NetTrainError(message, hint=hint, code=code)
    err.path = None if path is None else str(path)
    return err
