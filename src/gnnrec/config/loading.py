"""Loading ``params.yaml``: safe YAML, duplicate keys refused, and pydantic's validation errors turned
into :class:`gnnrec.errors.ParamsError` naming the dotted key (``train.lr``), what was expected and what
was given."""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from gnnrec.config.params import Params, split_sections
from gnnrec.errors import ParamsError


def params_from_dict(raw: Any, check_models: bool = True) -> Params:
    """Build :class:`Params` from the parsed YAML mapping, validating every key (the models' own
    sections too, unless ``check_models`` is false: then on first use)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError("<top level>", "a mapping of sections", type(raw).__name__)
    shared, sections = split_sections(raw)
    params = validate_section(Params, {**shared, "model_sections": sections}, "")
    return params.check_models() if check_models else params


def load_params(path: str | Path = "params.yaml", check_models: bool = True) -> Params:
    """Read and validate ``params.yaml`` (safe YAML loading). Errors name the file and the key."""
    import yaml  # here, not at module level: the library core (models, training) runs without it

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError("<file>", f"a params file at {path}", "no such file") from None
    except UnicodeDecodeError as exc:
        raise ParamsError("<file>", f"UTF-8 text in {path}", f"undecodable byte at offset {exc.start}") from None
    except OSError as exc:  # a folder, no permission
        raise ParamsError("<file>", f"a readable params file at {path}", exc.strerror or str(exc)) from None
    try:
        raw = yaml.load(text, Loader=_safe_unique_key_loader())  # safe loading; duplicate keys are errors
    except yaml.YAMLError as exc:
        raise ParamsError("<file>", f"valid YAML in {path}", str(exc).replace("\n", " ")) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor refused a value, e.g. 2020-02-30
        raise ParamsError("<file>", f"valid YAML values in {path}", str(exc)) from None
    except RecursionError:
        raise ParamsError("<file>", f"YAML nested at most a few hundred levels deep in {path}",
                          "deeper nesting") from None
    try:
        return params_from_dict(raw, check_models=check_models)
    except ParamsError as exc:
        exc.file = str(path)
        raise


def validate_section(cls: type[BaseModel], raw: Any, prefix: str) -> Any:
    """``cls.model_validate(raw)``; the first error becomes a :class:`ParamsError` on ``prefix.<loc>``."""
    if not isinstance(raw, dict):
        raise ParamsError(prefix or "<top level>", "a mapping", _describe(raw))
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise _params_error(cls, exc.errors(), prefix) from None


# ------------------------------------------------------------------------------- error translation
def _params_error(cls: type[BaseModel], errors: list[dict[str, Any]], prefix: str) -> ParamsError:
    err = errors[0]
    loc = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"] if p != "model_sections"]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ParamsError):            # a section's own check: its key is relative to the section
        loc = loc + [cause.key] if cause.key else loc
        return ParamsError(_dotted(prefix, loc), cause.expected, cause.got)
    key = _dotted(prefix, loc)
    kind, value = err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(cls, err["loc"][:-1])
        fields = [f.alias or n for n, f in parent.model_fields.items() if n != "model_sections"] if parent else []
        if parent is not None and prefix == "" and len(err["loc"]) == 1:
            return ParamsError(key, f"a known section ({', '.join(sorted(fields))})", "unknown key")
        own = [n for n in fields if n not in ("epochs", "batch_size", "lr", "l2", "patience")]
        rest = [n for n in fields if n not in own]
        return ParamsError(key, f"a known key (allowed here: {', '.join(own + rest) or 'none'})", "unknown key")
    if kind == "literal_error":
        return ParamsError(key, f"one of {ctx.get('expected', '').replace(' or ', ', ')}".replace("'", ""), value)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return ParamsError(key, "an integer", _describe(value))
    if kind in ("float_type", "float_parsing"):
        return ParamsError(key, "a number", _describe(value))
    if kind == "finite_number":
        return ParamsError(key, "a finite number", value)
    if kind in ("bool_type", "bool_parsing"):
        return ParamsError(key, "true or false", _describe(value))
    if kind == "string_type":
        return ParamsError(key, "a string", _describe(value))
    if kind in ("tuple_type", "list_type"):
        return ParamsError(key, "a list", _describe(value))
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return ParamsError(key, "a mapping", _describe(value))
    if kind == "too_short":
        return ParamsError(key, "a non-empty list" if isinstance(value, (list, tuple)) else "a non-empty value",
                           list(value) if isinstance(value, (list, tuple)) else value)
    if kind == "string_too_short":
        return ParamsError(key, "a non-empty string", value)
    if kind == "string_pattern_mismatch":
        return ParamsError(key, "cpu, cuda or cuda:N" if loc[-1:] == ["device"] else f"text matching "
                           f"{ctx.get('pattern')}", value)
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return ParamsError(key, _bounds(cls, err["loc"], value), value)
    return ParamsError(key, err.get("msg", "a valid value"), _describe(value))


def _bounds(cls: type[BaseModel], loc: tuple, value: Any) -> str:
    """"an integer >= 1", "a number > 0", "a number between 0 and 1" ... from the field's constraints."""
    import annotated_types as at

    parent = _model_at(cls, loc[:-1]) if not isinstance(loc[-1], int) else _model_at(cls, loc[:-2])
    name = loc[-1] if not isinstance(loc[-1], int) else loc[-2]
    info = parent.model_fields.get(name) if parent else None
    if info is None and parent is not None:
        info = next((f for f in parent.model_fields.values() if f.alias == name), None)
    metadata = _all_metadata(info.annotation, info.metadata) if info is not None else []
    bounds = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in metadata
              if isinstance(m, (at.Ge, at.Gt, at.Le, at.Lt))}
    kind = "a number" if info is None or _mentions_float(info.annotation) else "an integer"
    if kind == "a number" and "Ge" in bounds and "Le" in bounds:
        return f"a number between {bounds['Ge']:g} and {bounds['Le']:g}"
    if kind == "a number" and "Ge" in bounds and "Lt" in bounds:
        return f"a number in [{bounds['Ge']:g}, {bounds['Lt']:g})"
    shown = {n: "2**63" if v == 2**63 else v for n, v in bounds.items()}
    parts = [f"{op} {shown[n]}" for n, op in (("Ge", ">="), ("Gt", ">"), ("Le", "<="), ("Lt", "<")) if n in bounds]
    return f"{kind} {' and '.join(parts)}" if parts else "a value in range"


def _mentions_float(tp: Any) -> bool:
    return tp is float or any(_mentions_float(a) for a in typing.get_args(tp))


def _all_metadata(annotation: Any, metadata: list) -> list:
    out = list(metadata)
    stack = [annotation]
    while stack:
        tp = stack.pop()
        if typing.get_origin(tp) is typing.Annotated:
            for m in tp.__metadata__:
                out.extend(m.metadata if isinstance(m, FieldInfo) else [m])
            stack.append(typing.get_args(tp)[0])
        else:
            stack.extend(a for a in typing.get_args(tp) if a is not type(None))
    return out


def _model_at(cls: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The section class at ``loc`` (a path of field names) below ``cls``."""
    current: Any = cls
    for part in loc:
        if isinstance(part, int):
            continue
        fields = current.model_fields
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return None
        tp = info.annotation
        while typing.get_origin(tp) is not None and not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if args else None
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return None
        current = tp
    return current


def _dotted(prefix: str, loc: list[str]) -> str:
    out = prefix
    for part in loc:
        if part.startswith("["):
            out += part
        elif part:
            out = f"{out}.{part}" if out else part
    return out or "<top level>"


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


@functools.lru_cache(maxsize=None)
def _safe_unique_key_loader() -> type:
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the last).
    Built on first use so that importing this module does not import yaml."""
    import yaml

    class _SafeUniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor" may be overridden by design
                    continue
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} appears twice (lines {seen[key]} and {line})",
                            key_node.start_mark)
                    seen[key] = line
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    break
            return super().construct_mapping(node, deep=deep)

    return _SafeUniqueKeyLoader
