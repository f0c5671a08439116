"""Command-line values coerced without building pydantic TypeAdapters where none is needed.

typer 0.29 coerces every parameter of the command being run through a pydantic TypeAdapter that it
builds on first use (typer._coercion.build_runtime_param), even for a flag left unset (help,
completion). Importing typer._adapters and building those adapters cost 70-130 ms of a fresh
`tier report` (pydantic.types, json_schema, a core schema per parameter). Here:
- `str` and `Path` parameters run the functions typer's adapter runs, called directly:
  `_parse_cli_str` (copied below: its module imports pydantic) and typer's `coerce_cli_path`, after
  making a Path of the string as pydantic's Path validator does;
- `bool`, `int` and `float` parameters pass a value that already has the type, or a number written
  plainly ("30", "-2", "0.5"), within min/max, as pydantic would (an int default of a float option
  becomes a float), and hand anything else (out of range, "1e3", "abc") to typer's own adapter,
  built then, so its error messages are the ones users see.
- `list[Path]` parameters (the import commands' files): PlainPath on each item, into a list.
Other lists, files, parsers and clamped numbers keep typer's adapter. tests/test_cli_coerce.py checks,
parameter by parameter, that both give the same values and the same errors.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from typer import _click
from typer._click import _compat
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, build_runtime_param
from typer._display import _escape_control_characters
from typer._param_types import coerce_cli_path, routes_to_path


def _parse_cli_str(value: Any) -> str:
    """typer._adapters._parse_cli_str (typer 0.29.2), the whole of a `str` parameter's coercion."""
    if value is None:
        raise ValueError("None is not a valid string")
    if isinstance(value, bytes):
        enc = _compat._get_argv_encoding()
        try:
            return value.decode(enc)
        except UnicodeError:
            fs_enc = sys.getfilesystemencoding()
            if fs_enc != enc:
                try:
                    return value.decode(fs_enc)
                except UnicodeError:
                    return value.decode("utf-8", "replace")
            return value.decode("utf-8", "replace")
    return str(value)


@dataclass(frozen=True)
class PlainStr(RuntimeParam):
    def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
        return _parse_cli_str(value)


@dataclass(frozen=True)
class PlainPath(RuntimeParam):
    def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
        if isinstance(value, str):
            value = Path(value)  # what pydantic's Path validator makes of a str
        try:
            return coerce_cli_path(value, self.parameter_info, path_type=Path, param=param, ctx=ctx)
        except ValueError as exc:  # e.g. a NUL in the path: pydantic's words for it, as typer's adapter says it
            raise BadParameter(_escape_control_characters(f"Value error, {exc}"), ctx=ctx, param=param) from exc


@dataclass(frozen=True)
class PlainPathList(RuntimeParam):
    """list[Path] (the import commands' files): each item as PlainPath does, into a list, as typer's
    list adapter does; an item PlainPath refuses goes, with the whole value, to typer's adapter (its
    error message)."""

    def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
        items = value if isinstance(value, (list, tuple)) else [value]
        one = PlainPath(parameter_info=self.parameter_info, annotation=Path)
        try:
            return [one._coerce_value(item, param, ctx) for item in items]
        except BadParameter:
            real = build_runtime_param(param.type_descriptor)
            param._runtime_param = real
            return real._coerce_value(value, param=param, ctx=ctx)


@dataclass(frozen=True)
class Ready(RuntimeParam):
    """bool/int/float: a value of the type already (a default, a flag) as it is; else typer's adapter."""

    def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
        kind, info = self.annotation, self.parameter_info
        if kind is bool and isinstance(value, bool):
            return value
        if isinstance(value, str) and kind in (int, float):  # typed on the command line
            if _PLAIN_INT.fullmatch(value) or (kind is float and _PLAIN_DECIMAL.fullmatch(value)):
                value = kind(value)
        if kind is int and type(value) is int and _within(value, info.min, info.max):
            return value
        if kind is float and type(value) in (int, float) and _within(value, info.min, info.max):
            return float(value)
        real = build_runtime_param(param.type_descriptor)
        param._runtime_param = real
        return real._coerce_value(value, param=param, ctx=ctx)


# numbers written plainly, which int()/float() and pydantic read alike; any other spelling ("1_000",
# " 5", "1e3", "007") goes to typer's adapter
_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,15})")
_PLAIN_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,15})\.[0-9]{1,15}")


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def quick_runtime_param(param: _click.Parameter) -> RuntimeParam | None:
    """PlainStr, PlainPath or Ready for a typer parameter of those simple types, else None."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None or desc.file_annotation is not None:
        return None
    info, annotation = desc.parameter_info, desc.annotation
    if info.parser is not None or info.path_type is not None:
        return None
    if annotation is str:
        return PlainStr(parameter_info=info, annotation=annotation)
    if annotation is Path and routes_to_path(annotation, info):
        return PlainPath(parameter_info=info, annotation=annotation)
    if annotation in (bool, int, float) and not info.clamp:
        return Ready(parameter_info=info, annotation=annotation)
    if get_origin(annotation) is list and get_args(annotation) == (Path,) and routes_to_path(Path, info):
        return PlainPathList(parameter_info=info, annotation=annotation)
    return None


def lighten(params: list[_click.Parameter]) -> None:
    """Give each simple parameter its quick coercion before click processes the values."""
    for param in params:
        if getattr(param, "_runtime_param", False) is None:
            quick = quick_runtime_param(param)
            if quick is not None:
                param._runtime_param = quick  # type: ignore[attr-defined]
