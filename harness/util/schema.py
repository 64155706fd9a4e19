"""One way to check configs: declarative schemas for sweep configs, training configs and model specs.

A schema is a tree of :class:`Spec` objects. ``validate(schema, value, where)`` walks it once,
normalizes every value (a number declared as a float becomes a float, so 1 and 1.0 are one cell;
a single value where a list is expected becomes a list of one), fills defaults, and collects every
problem — each naming the key (a dotted path), what was expected and what came — before raising
one :class:`ConfigError` holding all of them. Nothing is computed before a config validates.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """Every problem of a config at once; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


_MISSING = object()
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def describe(v: Any) -> str:
    return f"{v!r} ({type(v).__name__})" if not isinstance(v, (str, bool, type(None))) else repr(v)


class Spec:
    """A value's type and range. ``check`` returns the normalized value or appends problems."""

    doc = "a value"

    def check(self, v: Any, where: str, problems: list[str]) -> Any:
        raise NotImplementedError

    def fail(self, v: Any, where: str, problems: list[str], doc: str | None = None) -> Any:
        problems.append(f"{where}: expected {doc or self.doc}, got {describe(v)}")
        return _MISSING


@dataclass
class Int(Spec):
    lo: int | None = None
    hi: int | None = None

    @property
    def doc(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"an integer in [{self.lo}, {self.hi}]"
        return f"an integer >= {self.lo}" if self.lo is not None else "an integer"

    def check(self, v, where, problems):
        if isinstance(v, bool) or not isinstance(v, int):
            return self.fail(v, where, problems)
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            return self.fail(v, where, problems)
        return int(v)


@dataclass
class Number(Spec):
    """A finite real number (int or float), normalized to float."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    @property
    def doc(self) -> str:
        if self.lo is None:
            return "a finite number"
        return f"a finite number {'>' if self.lo_open else '>='} {self.lo:g}" + (
            f" and <= {self.hi:g}" if self.hi is not None else "")

    def check(self, v, where, problems):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return self.fail(v, where, problems)
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return self.fail(v, where, problems)
        if self.hi is not None and v > self.hi:
            return self.fail(v, where, problems)
        return float(v)


@dataclass
class Bool(Spec):
    doc = "true or false"

    def check(self, v, where, problems):
        return v if isinstance(v, bool) else self.fail(v, where, problems)


@dataclass
class Str(Spec):
    doc = "a string"

    def check(self, v, where, problems):
        return v if isinstance(v, str) else self.fail(v, where, problems)


@dataclass
class Name(Spec):
    """A safe directory name: letters, digits, '_', '.', '-', not starting with '.' or '-'."""

    doc = "a name of letters, digits, '_', '.', '-' (a directory name, not a path)"

    def check(self, v, where, problems):
        return v if isinstance(v, str) and _NAME.match(v) else self.fail(v, where, problems)


@dataclass
class Choice(Spec):
    values: Iterable[Any] = ()

    @property
    def doc(self) -> str:
        return f"one of {list(self.values)}"

    def check(self, v, where, problems):
        ok = isinstance(v, (str, int, float)) and not isinstance(v, bool) and v in list(self.values)
        return v if ok else self.fail(v, where, problems)


@dataclass
class Optional(Spec):
    """None, or a value of ``inner``."""

    inner: Spec = field(default_factory=Spec)

    @property
    def doc(self) -> str:
        return f"{self.inner.doc} (or nothing)"

    def check(self, v, where, problems):
        return None if v is None else self.inner.check(v, where, problems)


@dataclass
class ListOf(Spec):
    """A non-empty list (a single value counts as a list of one) of distinct normalized items."""

    item: Spec = field(default_factory=Spec)
    scalar_ok: bool = True
    unique: bool = True
    min_len: int = 1

    @property
    def doc(self) -> str:
        return f"a list of {self.item.doc}"

    def check(self, v, where, problems):
        if not isinstance(v, list):
            if not self.scalar_ok or isinstance(v, (dict, tuple)):
                return self.fail(v, where, problems)
            v = [v]
        if len(v) < self.min_len:
            return self.fail(v, where, problems, f"a list of at least {self.min_len} of {self.item.doc}")
        out = [self.item.check(x, f"{where}[{i}]", problems) for i, x in enumerate(v)]
        if self.unique:
            seen: dict[str, int] = {}
            for i, x in enumerate(out):
                key = repr(float(x)) if isinstance(x, (int, float)) and not isinstance(x, bool) else repr(x)
                if x is not _MISSING and key in seen:
                    problems.append(f"{where}: {v[i]!r} at [{i}] repeats the value at [{seen[key]}] (cells would be"
                                    " computed twice)")
                seen.setdefault(key, i)
        return out


@dataclass
class Table(Spec):
    """A TOML table with known keys: ``keys`` maps name -> (spec, default); default ``REQUIRED``
    makes a key required. ``extra``: a spec for any other key (None: unknown keys are errors)."""

    keys: Mapping[str, tuple[Spec, Any]] = field(default_factory=dict)
    extra: Spec | None = None
    renamed: Mapping[str, str] = field(default_factory=dict)  # old key -> new key, read for one release
    doc = "a table"

    def check(self, v, where, problems):
        if not isinstance(v, Mapping):
            return self.fail(v, where, problems)
        prefix = f"{where}." if where else ""
        for old, new in self.renamed.items():
            if old in v:
                if new in v:
                    problems.append(f"{prefix}{old}: renamed to {new!r}; give only {prefix}{new}")
                    continue
                warnings.warn(f"{prefix}{old} is renamed {prefix}{new} (the same meaning); the old name is read"
                              " until the next release", FutureWarning, stacklevel=2)
                v = {(new if k == old else k): x for k, x in v.items()}
        unknown = sorted(k for k in v if k not in self.keys)
        out: dict[str, Any] = {}
        if unknown and self.extra is None:
            problems.append(f"{where or 'config'}: unknown key(s) {unknown}; valid keys are {sorted(self.keys)}")
        for k in unknown if self.extra is not None else ():
            out[k] = self.extra.check(v[k], f"{prefix}{k}", problems)
        for k, (spec, default) in self.keys.items():
            if k in v:
                out[k] = spec.check(v[k], f"{prefix}{k}", problems)
            elif default is REQUIRED:
                problems.append(f"{prefix}{k}: required ({spec.doc}), missing")
            else:
                d = default() if callable(default) else default
                out[k] = spec.check(d, f"{prefix}{k}", problems) if isinstance(spec, Table) else d
        return out


REQUIRED = object()


@dataclass
class Custom(Spec):
    """A check written as a function ``f(value, where, problems) -> normalized``."""

    fn: Callable[[Any, str, list[str]], Any] = lambda v, w, p: v
    doc: str = "a value"

    def check(self, v, where, problems):
        return self.fn(v, where, problems)


def validate(spec: Spec, value: Any, where: str = "", extra_checks: Callable[[Any, list[str]], None] | None = None) -> Any:
    """Normalize ``value`` against ``spec``; raise one :class:`ConfigError` with every problem."""
    problems: list[str] = []
    out = spec.check(value, where, problems)
    if not problems and extra_checks is not None:
        extra_checks(out, problems)
    if problems:
        raise ConfigError(problems)
    return out


# --------------------------------------------------------------------------- function arguments
#: A random seed: what ``torch.Generator.manual_seed`` accepts (a larger one overflows inside torch).
SEED = Int(0, 2**63 - 1)


def check_arg(spec: Spec, value: Any, name: str) -> Any:
    """Check one function argument against a spec: the normalized value, or a ValueError that
    names the argument, what was expected and what came."""
    problems: list[str] = []
    out = spec.check(value, name, problems)
    if problems:
        raise ValueError(problems[0])
    return out


def check_float_dtype(dtype: Any, name: str = "dtype") -> Any:
    """torch.float32 or torch.float64 (samplers refuse integer and bool dtypes)."""
    import torch

    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name}: expected torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def diff(a: Any, b: Any, where: str = "") -> list[str]:
    """Dotted paths at which two normalized configs differ."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{where}.{k}" if where else str(k)
            out += [p] if (k in a) != (k in b) else diff(a[k], b[k], p)
        return out
    return [] if a == b else [where or "(root)"]


__all__ = ["ConfigError", "Spec", "Int", "Number", "Bool", "Str", "Name", "Choice", "Optional", "ListOf", "Table",
           "Custom", "REQUIRED", "SEED", "validate", "diff", "describe", "check_arg", "check_float_dtype"]
