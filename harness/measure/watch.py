"""Watching any model: which submodules to read, what their tensors are, and runs that never
change the model they read.

* :func:`resolve_input` / :func:`watch_list`: the input's field and the watched submodules, with
  the fields the caller declared or a harness model declares for its own layers.
* :func:`frozen`: eval mode, no autograd, every module's mode restored afterwards, and parameters
  and buffers checked bitwise unchanged (restored and reported if the model changed itself).
* :func:`run`: one forward pass with hooks; every watched call's output (and, on request, its
  input and where that input came from) captured as a copy, so in-place operations later in the
  forward pass cannot alter what was read.
* :func:`probes`: each watched call with its input and output field, inferred only when
  unambiguous (a real tensor shaped like a grid of the model input's kind and bandwidth);
  anything else is a ValueError that names the layer and asks for a declaration.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..nn.layers import InvariantDescriptor, SpectralLayer
from ..nn.models import SphericalModel
from ..nn.so3_layers import SO3_LAYERS, SO3Descriptor, SO3Integrate
from ..sphere.fields import Field, Invariant, Irreps, S2Coeffs, S2Grid, SO3Grid, as_field
from ..sphere.grids import bandwidth_from_shape
from ..sphere.so3_transforms import so3_bandwidth_from_shape
from ..sphere.transforms import BANDLIMIT_TOLERANCE

INPUT = "<input>"  # the producer name of the model's own input


@dataclass
class Watched:
    """A watched submodule (or the model itself, when it is a plain callable)."""

    name: str
    module: nn.Module | Callable
    in_field: Field | None = None
    out_field: Field | None = None


@dataclass
class Call:
    """One call of a watched submodule in one forward pass."""

    out: object
    inp: torch.Tensor | None = None
    producer: str | None = None
    rest: tuple = ()
    kwargs: dict = field(default_factory=dict)
    n_tensor_args: int = 0


@dataclass
class Probe:
    """One row group: a watched call with its fields."""

    name: str
    key: str  # the watched name (``name`` adds ``[i]`` when a module is called more than once)
    layer_type: str
    module: nn.Module | Callable
    call: int
    in_field: Field | None
    out_field: Field

    def output(self, calls: Mapping[str, list[Call]]) -> object:
        return calls[self.key][self.call].out

    def rerun(self, calls: Mapping[str, list[Call]], u: torch.Tensor) -> object:
        """This call again, on the input ``u`` in place of its captured one."""
        c = calls[self.key][self.call]
        return self.module(u, *c.rest, **c.kwargs)


# --------------------------------------------------------------------------- what is watched


def check_finite(t: torch.Tensor, where: str) -> None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        raise ValueError(f"{where}: {int(bad.sum())} of its {t.numel()} values are NaN or Inf")


def prepare_input(model: object, x: object, input: Field | str | None, project: bool,
                  name: str = "x") -> tuple[Field, torch.Tensor]:
    """Validate ``x`` (the argument ``name``) against its field before any compute: type and
    shape, finite values, and band-limited at the declared bandwidth (else refused, or projected
    when ``project``)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor [batch, ...], got {type(x).__name__}")
    field = resolve_input(model, x, input)
    field.check(x, name)
    check_finite(x, name)
    if field.sampled and x.shape[0] > 0:
        frac = float(field.out_of_band(x).max())
        tol = BANDLIMIT_TOLERANCE[x.dtype]
        if frac > tol:
            if not project:
                raise ValueError(f"{name}: not band-limited on {field}: {frac:.2e} of an input's energy (the worst"
                                 f" of {x.shape[0]}) lies outside the degrees < {field.bandwidth} the grid represents"
                                 f" (limit {tol:g} for {x.dtype}); an exact rotation of it is not defined. Pass"
                                 " project=True to measure its band-limited part")
            x = field.project(x)
    return field, x


def resolve_input(model: object, x: torch.Tensor, input: Field | str | None) -> Field:
    """The field of ``x``: declared (a Field or a grid kind), or a harness model's or layer's own
    (its grid, or coefficients for a layer built with ``input="coeffs"``)."""
    own = _own_kind(model)
    coeffs = isinstance(model, SpectralLayer) and model.input == "coeffs"
    if input is None and own is None:
        declared = _declared_irreps(model, "irreps_in")
        if declared is not None:  # an e3nn module says what it takes
            return declared
    if isinstance(input, str) and input in ("coeffs", "coefficients", "S2Coeffs"):
        raise ValueError(f"input: {input!r} is not a grid kind; for coefficients [batch, ..., b, b] declare"
                         " input=harness.S2Coeffs(b)")
    if input is None:
        if own is None:
            raise ValueError(f"input: cannot tell what x (shape {tuple(x.shape)}) is for a"
                             f" {type(model).__name__}; declare it, e.g. input=harness.S2Grid('dh', b),"
                             " harness.Irreps('0e+1o+2e') or a grid kind such as 'dh'")
        if coeffs:
            if not isinstance(x, torch.Tensor) or x.dim() < 2:
                raise ValueError(f"x: expected coefficients [batch, ..., b, b], got {tuple(getattr(x, 'shape', ()))}")
            return S2Coeffs(int(x.shape[-1]), own)
        return as_field(own, x, "input")
    f = as_field(input, x, "input")
    if coeffs:
        if not isinstance(f, S2Coeffs):
            raise ValueError(f"input: declared {f}, but the {type(model).__name__} reads coefficients"
                             " (input='coeffs'); declare harness.S2Coeffs(b) or leave input= out")
        return f
    strict = isinstance(model, (SphericalModel, SpectralLayer))
    if own is not None and ((strict and not isinstance(f, S2Grid)) or (isinstance(f, S2Grid) and f.kind != own)):
        raise ValueError(f"input: declared {f}, but the model's layers work on the {own!r} grid;"
                         f" measuring it on another field would read its samples at the wrong points")
    return f


def _declared_irreps(model: object, attr: str) -> Field | None:
    """An e3nn module's own ``irreps_in`` / ``irreps_out`` as an :class:`~harness.sphere.fields.Irreps`
    field (read from its string form: e3nn is not imported), or None."""
    value = getattr(model, attr, None)
    if value is None or isinstance(value, (bool, int, float)):
        return None
    try:
        return Irreps(str(value))
    except ValueError:
        return None


def _own_kind(model: object) -> str | None:
    """The grid kind of a harness model or layer, or of every harness layer inside a module
    (when they all agree); None when there is none."""
    if isinstance(model, SphericalModel):
        return model.kind
    if not isinstance(model, nn.Module):
        return None
    kinds = {m.kind for m in model.modules() if isinstance(m, SpectralLayer)}
    if len(kinds) > 1:
        raise ValueError(f"model: its harness layers work on different grids {sorted(kinds)}; declare input=")
    return kinds.pop() if kinds else None


FieldDecl = Field | tuple[Field | None, Field | None] | None


def watch_list(model: object, layers: Sequence[str] | Mapping[str, FieldDecl] | None,
               output: Field | None) -> list[Watched]:
    if not callable(model):
        raise TypeError(f"model: expected an nn.Module or a callable, got {type(model).__name__}")
    if output is not None and not isinstance(output, Field):
        raise TypeError(f"output: expected a field (harness.S2Grid(kind, b), S2Coeffs(b), Irreps('...'),"
                        f" Invariant(), ...), got {output!r}")
    return _watch_list(model, layers, output)


def _watch_list(model: object, layers: Sequence[str] | Mapping[str, FieldDecl] | None,
                output: Field | None) -> list[Watched]:
    """The watched submodules, in the order given (default: a SphericalModel's layers, an
    ``nn.Sequential``'s children, else the model's output alone, named "output")."""
    if layers is None:
        if isinstance(model, SphericalModel):
            return [Watched(n, m, fi, fo) for n, m, fi, fo in model.fields()]
        if isinstance(model, nn.Sequential):
            children = [Watched(n, m) for n, m in model.named_children()]
            if children and output is not None:  # output= is the field of what the last child returns
                children[-1].out_field = output
            return children
        return [Watched("output", model, None, output if output is not None else _declared_irreps(model, "irreps_out"))]
    if not isinstance(model, nn.Module):
        raise ValueError(f"layers: a plain callable ({type(model).__name__}) has no submodules to watch")
    if isinstance(layers, str) or not isinstance(layers, (Sequence, Mapping)) or not layers:
        raise ValueError(f"layers: expected a non-empty list of names from model.named_modules(), or a dict"
                         f" name -> field, got {layers!r}")
    own = {n: (m, fi, fo) for n, m, fi, fo in model.fields()} if isinstance(model, SphericalModel) else {}
    named = dict(model.named_modules())
    out = []
    for name in layers:
        if not isinstance(name, str):
            raise ValueError(f"layers: names must be strings, got {name!r}")
        if name in own:
            module, fi, fo = own[name]
        elif name in named and name != "":
            module, fi, fo = named[name], None, None
        else:
            known = list(own) + [n for n in named if n]
            raise ValueError(f"layers: no submodule named {name!r}; known: {known[:30]}"
                             f"{' ...' if len(known) > 30 else ''}")
        if isinstance(layers, Mapping) and layers[name] is not None:
            decl = layers[name]
            if isinstance(decl, tuple):
                if len(decl) != 2:
                    raise ValueError(f"layers[{name!r}]: expected a field or (input field, output field), got {decl!r}")
                fi = decl[0] if decl[0] is not None else fi
                fo = decl[1] if decl[1] is not None else fo
            elif isinstance(decl, Field):
                fo = decl
            else:
                raise ValueError(f"layers[{name!r}]: expected a field or (input field, output field), got {decl!r}")
        out.append(Watched(name, module, fi, fo))
    if len({w.name for w in out}) != len(out):
        raise ValueError(f"layers: a name is listed twice in {list(layers)}")
    return out


# --------------------------------------------------------------------------- a run that changes nothing
@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_memory() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``). Tensors of varying sizes
    freed by several threads otherwise stay in glibc's arenas: measured on the preset, RSS grew
    by ~35 MiB per chunk of rotations without it and stayed flat with it."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)



def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_complex():  # (a conjugate view holds the same bits as its resolved copy)
        a, b = torch.view_as_real(a.resolve_conj()), torch.view_as_real(b.resolve_conj())
    if a.is_floating_point():
        ints = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}[a.element_size()]
        return torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))
    return torch.equal(a, b)


@contextlib.contextmanager
def frozen(model: object, grad: bool = False) -> Iterator[None]:
    """Measure ``model`` safely: eval mode and (unless ``grad``) no autograd inside; afterwards
    every module's training flag is restored, and if any parameter or buffer changed bitwise (a
    model that updates itself in eval mode), it is put back and a RuntimeError names it."""
    if not isinstance(model, nn.Module):
        with (contextlib.nullcontext() if grad else torch.no_grad()):
            yield
        return
    modes = [(m, m.training) for m in model.modules()]
    tensors = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(dict(model.named_buffers(remove_duplicate=False)))
    saved = {k: v.detach().clone() for k, v in tensors.items() if v is not None}
    if model.training:  # right (dropout and batch statistics are not equivariant, or not deterministic), but say it
        warnings.warn(f"model: {type(model).__name__} is in training mode; it is measured in eval mode (and left"
                      " in training mode afterwards)", stacklevel=4)
    model.eval()
    failed = False
    try:
        with (contextlib.nullcontext() if grad else torch.no_grad()):
            yield
    except BaseException:
        failed = True
        raise
    finally:
        for m, t in modes:
            m.training = t
        changed = [k for k, v in saved.items() if not _same_bits(tensors[k].detach(), v)]
        if changed:
            with torch.no_grad():
                for k in changed:
                    tensors[k].copy_(saved[k])
            if not failed:
                raise RuntimeError(f"model: its state changed while being measured (in eval mode, without"
                                   f" gradients): {changed[:10]}; it was restored, but numbers measured on a"
                                   " model that changes between calls mean nothing")


# --------------------------------------------------------------------------- one forward pass
def run(model: object, x: torch.Tensor, watched: Sequence[Watched], capture_inputs: bool = False
        ) -> tuple[object, dict[str, list[Call]]]:
    """``model(x)`` with every watched call captured; returns ``(output, {name: [Call, ...]})``.

    Outputs are copied as they are produced; with ``capture_inputs`` the first positional input is
    copied before the call, and its producer (the model input or an earlier watched output, by
    object identity at that moment) recorded.
    """
    calls: dict[str, list[Call]] = {w.name: [] for w in watched}
    producers: dict[int, str] = {}
    keep: list[object] = []  # keeps the objects whose ids are in producers alive
    handles = []
    pending: dict[str, list[Call]] = {w.name: [] for w in watched}

    def pre(name: str):
        def hook(module, args, kwargs):
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            c = Call(out=None, n_tensor_args=len(tensors), rest=tuple(args[1:]), kwargs=dict(kwargs))
            if capture_inputs and first is not None:
                c.inp = first.clone()
                c.producer = producers.get(id(first))
            pending[name].append(c)
        return hook

    def post(name: str):
        def hook(module, args, kwargs, out):
            c = pending[name].pop()
            c.out = out.clone() if isinstance(out, torch.Tensor) else out
            calls[name].append(c)
            if isinstance(out, torch.Tensor):
                producers[id(out)] = name
                keep.append(out)
        return hook

    root_callable = None
    try:
        for w in watched:
            if not isinstance(w.module, nn.Module):
                root_callable = w
                continue
            handles.append(w.module.register_forward_pre_hook(pre(w.name), with_kwargs=True))
            handles.append(w.module.register_forward_hook(post(w.name), with_kwargs=True))
        xin = x.clone()
        producers[id(xin)] = INPUT
        keep.append(xin)
        out = model(xin)
        if root_callable is not None:
            calls[root_callable.name].append(Call(out=out.clone() if isinstance(out, torch.Tensor) else out,
                                                  inp=x.clone() if capture_inputs else None,
                                                  producer=INPUT, n_tensor_args=1))
    finally:
        for h in handles:
            h.remove()
    return out, calls


# --------------------------------------------------------------------------- fields of what was seen
def _describe(t: object) -> str:
    if isinstance(t, torch.Tensor):
        return f"a tensor of shape {tuple(t.shape)} ({t.dtype})"
    return f"a {type(t).__name__}"


def _known_output_field(module: object, out: torch.Tensor) -> Field | None:
    """The output field of a harness layer (it declares its grid, or coefficients sampled on it)."""
    if isinstance(module, InvariantDescriptor):
        return Invariant()
    if isinstance(module, SpectralLayer) and isinstance(out, torch.Tensor) and out.dim() >= 2:
        kind = module.kind
        if module.output == "coeffs":
            return S2Coeffs(int(out.shape[-1]), kind)
        return S2Grid(kind, bandwidth_from_shape(tuple(out.shape[-2:]), kind))
    if isinstance(module, SO3_LAYERS) and isinstance(out, torch.Tensor):
        if isinstance(module, (SO3Integrate, SO3Descriptor)):
            return Invariant()
        return SO3Grid(so3_bandwidth_from_shape(tuple(out.shape), f"{type(module).__name__} output"))
    if isinstance(module, SphericalModel):
        return module.fields()[-1][3]
    return None


def _infer(t: object, in_field: Field) -> Field | None:
    """S2Grid only when ``t`` is a real tensor shaped like a grid of the model input's kind and
    bandwidth, and not also like an SO(3) grid ``[..., 2b, 2b, 2b]`` (ambiguous: declare it);
    nothing else is ever inferred (never an invariant)."""
    if isinstance(in_field, S2Grid) and in_field.matches(t):
        if t.dim() >= 5 and t.shape[-3] == t.shape[-2] == t.shape[-1]:
            return None
        return in_field
    return None


def _declare_hint(name: str, what: str) -> str:
    return (f"declare it: layers={{{name!r}: harness.S2Grid(kind, b) | harness.S2Coeffs(b) |"
            f" harness.Irreps('...') | harness.Invariant()}}{what}")


def probes(watched: Sequence[Watched], calls: Mapping[str, list[Call]], in_field: Field,
           need_inputs: bool) -> list[Probe]:
    """One :class:`Probe` per watched call, with its fields (declared, known, or inferred)."""
    out: list[Probe] = []
    by_name: dict[str, Field] = {INPUT: in_field}
    for w in watched:
        cs = calls[w.name]
        if not cs:
            raise ValueError(f"layers: {w.name!r} was not called in the forward pass")
        for i, c in enumerate(cs):
            row = w.name if len(cs) == 1 else f"{w.name}[{i}]"
            if not isinstance(c.out, torch.Tensor):
                raise ValueError(f"layer {row!r}: returned {_describe(c.out)}, not a tensor; watch a submodule"
                                 " that returns one tensor")
            known = _known_output_field(w.module, c.out)
            if w.out_field is not None and known is not None and w.out_field != known:
                raise ValueError(f"layer {row!r}: declared output {w.out_field}, but the {type(w.module).__name__}"
                                 f" writes {known}; measuring it as another field would compare the wrong numbers"
                                 " (leave the declaration out: the harness knows its own layers)")
            fo = w.out_field or known or _infer(c.out, in_field)
            if fo is None:
                raise ValueError(f"layer {row!r}: cannot tell how its output, {_describe(c.out)}, rotates; "
                                 + _declare_hint(w.name, " (or output= for the model's output)"))
            fo.check(c.out, f"layer {row!r} output")
            fi = None
            if need_inputs:
                if c.n_tensor_args != 1 or c.inp is None:
                    raise ValueError(f"layer {row!r}: isolated mode re-runs a layer on one rotated input, but it"
                                     f" takes {c.n_tensor_args} tensor arguments; use mode='cumulative'")
                fi = w.in_field or (by_name.get(c.producer) if c.producer else None) or _infer(c.inp, in_field)
                if fi is None:
                    raise ValueError(f"layer {row!r}: cannot tell how its input, {_describe(c.inp)}, rotates"
                                     " (isolated mode rotates it); " + _declare_hint(w.name, " as (input field, output field)"))
                fi.check(c.inp, f"layer {row!r} input")
            by_name[w.name] = fo
            out.append(Probe(row, w.name, type(w.module).__name__, w.module, i, fi, fo))
    return out


__all__ = ["Watched", "Call", "Probe", "INPUT", "resolve_input", "watch_list", "frozen", "run", "probes"]
