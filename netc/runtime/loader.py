"""Compile a spec and import the generated module, cached by the spec's hash."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from netc.compiler import compile_spec
from netc.compiler.cache import cache_dir


def load_source(source: str, name: str) -> ModuleType:
    """Import generated module source (written to the cache folder) as a module."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = cache_dir() / "modules"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{digest}.py"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(source)
        os.replace(tmp, path)
    mod_name = f"netc_generated_{name}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[mod_name] = module
    return module


def load(path: str | os.PathLike, wrt: tuple[str, ...] = ()) -> ModuleType:
    """Compile the spec at ``path`` (if it changed) and return the generated module."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    source = compile_spec(text, str(path), wrt=wrt)
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return load_source(source, stem)
