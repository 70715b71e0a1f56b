"""Typed options: one checker for recipe sections and component arguments alike.

A recipe section is a dataclass; a component's options are the keyword arguments of its constructor. Both are
checked here against their type annotations, so a plugin's prior gets the same validation as a built-in one:
unknown keys are named with their key path and the closest valid key, wrong types are named, defaults are filled.

Value ranges ride on the annotation (`typing.Annotated` with annotated-types' bounds, as pydantic reads them):
`lr: Annotated[float, Gt(0)] = 1e-3` refuses 0, negatives and NaN with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import Annotated, Any, Literal, Union

import annotated_types

from genzoo.core.errors import GenzooError, did_you_mean

# Ranges used across genzoo (plugins may use them too, or any annotated-types bound).
PositiveInt = Annotated[int, annotated_types.Ge(1)]
PositiveFloat = Annotated[float, annotated_types.Gt(0)]
Fraction = Annotated[float, annotated_types.Ge(0), annotated_types.Lt(1)]  # e.g. a dropout probability

_YAML11_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


def _describe(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _describe(typing.get_args(annotation)[0])
    if annotation in _NAMES:
        return _NAMES[annotation]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        return "a list"
    if origin is dict or annotation is dict:
        return "a mapping"
    if dataclasses.is_dataclass(annotation):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def _wrong(path: str, value, annotation) -> GenzooError:
    return GenzooError(
        f"recipe key '{path}' must be {_describe(annotation)}, got {value!r} ({type(value).__name__})",
        f"fix '{path}' in the recipe or the override",
    )


_BOUNDS = {
    annotated_types.Gt: ("gt", ">", lambda v, b: v > b),
    annotated_types.Ge: ("ge", ">=", lambda v, b: v >= b),
    annotated_types.Lt: ("lt", "<", lambda v, b: v < b),
    annotated_types.Le: ("le", "<=", lambda v, b: v <= b),
}


class OutOfRange(GenzooError):
    """A value of the right type outside its declared bounds (reported as such even inside `x | None`)."""


def _check_bounds(value, constraints, path: str):
    """Every annotated-types bound of an Annotated option; a NaN fails every bound (its comparisons are false)."""
    for constraint in constraints:
        parts = list(constraint) if isinstance(constraint, annotated_types.GroupedMetadata) else [constraint]
        for part in parts:
            rule = _BOUNDS.get(type(part))
            if rule is None or value is None:
                continue
            attr, sign, holds = rule
            bound = getattr(part, attr)
            if not holds(value, bound):
                raise OutOfRange(f"recipe key '{path}' must be {sign} {bound}, got {value!r}", f"fix '{path}'")
    return value


def check_value(value: Any, annotation: Any, path: str) -> Any:
    """Return `value` converted to `annotation` (int -> float only), or raise a GenzooError naming `path`."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _check_bounds(check_value(value, args[0], path), annotation.__metadata__, path)
    if origin in (Union, types.UnionType):
        for arg in args:  # None first so that Optional[x] keeps None
            try:
                return check_value(value, arg, path)
            except OutOfRange:
                raise
            except GenzooError:
                continue
        raise _wrong(path, value, annotation)
    if origin is Literal:
        if value in args:
            return value
        yaml11 = {False: ("no", "off", "false"), True: ("yes", "on", "true")}  # YAML 1.1 reads a bare `no` as false
        if isinstance(value, bool) and any(word in args for word in yaml11[value]):
            return next(word for word in yaml11[value] if word in args)
        raise GenzooError(
            f"recipe key '{path}' must be one of {', '.join(repr(a) for a in args)}, "
            f"got {value!r}{did_you_mean(value, args)}",
            f"fix '{path}'",
        )
    if annotation is type(None) or annotation is None:
        if value is None:
            return None
        raise _wrong(path, value, annotation)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _wrong(path, value, annotation)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong(path, value, annotation)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _YAML11_SCIENTIFIC.match(value):  # PyYAML reads "1e-5" as a string
            return float(value)
        raise _wrong(path, value, annotation)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _wrong(path, value, annotation)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _wrong(path, value, annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise GenzooError(
                    f"recipe key '{path}' must have {len(args)} items, got {len(value)}", f"fix '{path}'"
                )
            return tuple(check_value(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        out = [check_value(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise _wrong(path, value, annotation)
        vt = args[1] if args else Any
        return {str(k): check_value(v, vt, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise _wrong(path, value, annotation)
        return build_dataclass(annotation, value, path)
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _wrong(path, value, annotation)
    return value


def _unknown_key(key: str, valid, path: str) -> GenzooError:
    full = f"{path}.{key}" if path else key
    valid = sorted(valid)
    return GenzooError(
        f"unknown recipe key '{full}'{did_you_mean(key, valid)}",
        f"valid keys here: {', '.join(valid)}" if valid else "this section takes no keys",
    )


def build_dataclass(cls, data: dict, path: str = ""):
    """Build dataclass `cls` from a mapping, checking every key and type; missing keys take their defaults."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise _unknown_key(key, fields, path)
    kwargs = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = check_value(data[name], hints[name], sub)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise GenzooError(f"recipe key '{sub}' is missing", f"add '{sub}' to the recipe")
    return cls(**kwargs)


def bind_options(fn, options: dict, path: str, injected: dict | None = None) -> dict:
    """Check `options` against the keyword parameters of `fn` (a class or function) and fill defaults.

    `injected` names the arguments genzoo supplies itself (a model's prior, a dataset's split); they may not be
    set in the recipe. Returns the complete resolved options (recipe values + defaults), without `injected`.
    """
    injected = injected or {}
    target = fn.__init__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    hints = typing.get_type_hints(target, include_extras=True)
    params = {
        n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    settable = {n: p for n, p in params.items() if n not in injected}
    for key in options:
        if key not in settable:
            raise _unknown_key(key, settable, path)
    resolved = {}
    for name, param in settable.items():
        sub = f"{path}.{name}"
        if name in options:
            resolved[name] = check_value(options[name], hints.get(name, Any), sub)
        elif param.default is inspect.Parameter.empty:
            raise GenzooError(f"recipe key '{sub}' is missing", f"add '{sub}' to the recipe")
        else:
            resolved[name] = param.default
    return resolved
