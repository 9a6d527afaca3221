"""Objects named by import path, so configs and the command line can reach a user's code.

Two forms: ``"package.module:Name"`` (anything importable) and ``"path/to/file.py:Name"`` (a
file, relative to the working directory or absolute; loaded once per process under a module
name derived from its resolved path). ``Name`` may be dotted (``"mod:Class.factory"``).

An import path runs code: importing a module runs its body, and the object it names is then
called. Inside :func:`untrusted` (what loading a run directory does) no import path is loaded
at all, unless the caller allowed that exact one: a run directory someone sent you is data.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import site
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from difflib import get_close_matches
from pathlib import Path
from typing import Any

__all__ = [
    "load_object",
    "is_import_path",
    "absolute_import_path",
    "import_path_of",
    "untrusted",
    "UntrustedCodeError",
]


class UntrustedCodeError(ValueError):
    """An import path met inside :func:`untrusted`: one line naming the path, where it came
    from, and how to allow it."""


#: While set: where the import paths being built come from (``"the run directory 'DIR'"``)
#: and the ones the caller allowed by naming them itself.
_UNTRUSTED: ContextVar[tuple[str, frozenset[str]] | None] = ContextVar(
    "glfpinn_untrusted", default=None
)


@contextmanager
def untrusted(source: str, allowed: Iterable[str] = ()) -> Iterator[None]:
    """Within, :func:`load_object` refuses every import path but ``allowed`` (compared in
    :func:`absolute_import_path` form) with an :class:`UntrustedCodeError` naming ``source``:
    what a run directory names is then only read, never imported or called."""
    token = _UNTRUSTED.set((source, frozenset(absolute_import_path(a) for a in allowed)))
    try:
        yield
    finally:
        _UNTRUSTED.reset(token)


def _check_trusted(spec: str, what: str) -> None:
    gate = _UNTRUSTED.get()
    if gate is None:
        return
    source, allowed = gate
    if absolute_import_path(spec) not in allowed:
        raise UntrustedCodeError(
            f"{what} {spec!r} in {source} is an import path, and loading it would run its code; "
            f"pass --trust (Python: trust=True) if you trust that directory, or give the {what} "
            "yourself"
        )


def is_import_path(spec: str) -> bool:
    """Whether ``spec`` has the ``module:Name`` or ``file.py:Name`` form (not a registry name)."""
    return isinstance(spec, str) and ":" in spec


def absolute_import_path(spec: str) -> str:
    """``spec`` with a file path made absolute (``./my_pde.py:MyPDE`` -> ``/home/.../my_pde.py:
    MyPDE``), so that a run directory that records it finds the class again from any working
    folder; registry names and module paths are returned unchanged."""
    if not is_import_path(spec):
        return spec
    where, _, name = spec.rpartition(":")
    if not where.endswith(".py"):
        return spec
    return f"{Path(where).expanduser().resolve()}:{name}"


def load_object(spec: str, what: str = "object") -> Any:
    """The object ``spec`` names; a one-line ValueError (naming ``what`` and ``spec``) when the
    module or file cannot be found or imported, or holds no such name. Inside
    :func:`untrusted`, an :class:`UntrustedCodeError` before anything is imported."""
    _check_trusted(spec, what)
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(
            f"{what} {spec!r} must look like package.module:Name or path/to/file.py:Name"
        )
    module = _load_file(where, spec, what) if where.endswith(".py") else _import(where, spec, what)
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = [n for n in dir(obj) if not n.startswith("_")]
            close = get_close_matches(part, public, n=1) if len(part) <= 100 else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{what} {spec!r}: {where!r} has no {name!r}{hint}") from None
    return obj


def _import(module: str, spec: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ValueError(f"{what} {spec!r}: no module named {err.name!r}") from None
    except Exception as err:  # noqa: BLE001 - the user's module failed while importing
        raise ValueError(
            f"{what} {spec!r}: importing {module!r} failed ({type(err).__name__}: {err})"
        ) from None


def _load_file(path: str, spec: str, what: str) -> Any:
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ValueError(f"{what} {spec!r}: file {path!r} does not exist")
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:12]
    module_name = f"glfpinn_plugin_{file.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader_spec = importlib.util.spec_from_file_location(module_name, file)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"{what} {spec!r}: {path!r} cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # before executing: dataclasses and pickling look it up
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the user's file failed while running
        del sys.modules[module_name]
        raise ValueError(
            f"{what} {spec!r}: running {path!r} failed ({type(err).__name__}: {err})"
        ) from None
    return module


def import_path_of(obj: Any) -> str | None:
    """The import path that :func:`load_object` turns back into ``obj`` (a class or function):
    ``module:QualName`` for an importable module, else ``/abs/file.py:QualName`` for one defined
    in a file (a loaded plugin, the script being run, a ``runpy`` run, or a single-file module
    that is not installed, which another folder may not import by name). None for what no path
    can reach (a class defined inside a function)."""
    qualname = getattr(obj, "__qualname__", None)
    module_name = getattr(obj, "__module__", None)
    if not qualname or not module_name or "<locals>" in qualname:
        return None
    module = sys.modules.get(module_name)
    importable = (
        module is not None
        and module_name != "__main__"
        and not module_name.startswith("glfpinn_plugin_")
        and getattr(module, "__spec__", None) is not None
        and not _uninstalled_file(module)
    )
    if importable:
        return f"{module_name}:{qualname}"
    file = getattr(module, "__file__", None) or _defining_file(obj)
    return f"{Path(file).resolve()}:{qualname}" if file and Path(file).is_file() else None


def _uninstalled_file(module: Any) -> bool:
    """Whether ``module`` is a single file (``helm.py``, no package) outside the installed
    packages: found through the working folder, the script's folder or a path added by hand,
    which another process need not share, so ``helm:Helmholtz`` may not name it there and its
    file path does. (A module of a package keeps its module path: loaded as a lone file, its
    relative imports would fail.)"""
    file = getattr(module, "__file__", None)
    if "." in module.__name__ or not file or Path(file).name == "__init__.py":
        return False
    if Path(file).suffix != ".py":
        return False
    folder = Path(file).resolve().parent
    return not any(folder.is_relative_to(root) for root in _installed_roots())


@functools.cache
def _installed_roots() -> tuple[Path, ...]:
    """Where installed modules live: the standard library and the site-packages folders."""
    paths = sysconfig.get_paths()
    roots = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    roots += [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    return tuple(Path(root).resolve() for root in roots)


def _defining_file(obj: Any) -> str | None:
    """The source file of a function, or of the first method a class defines itself."""
    code = getattr(obj, "__code__", None)
    if code is None and isinstance(obj, type):
        code = next((f.__code__ for f in vars(obj).values() if hasattr(f, "__code__")), None)
    return None if code is None else code.co_filename
