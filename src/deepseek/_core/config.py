"""BaseConfig: frozen dataclasses with validation, a version, and JSON round-trip."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="BaseConfig")


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Subclasses are frozen dataclasses that validate in ``__post_init__``."""

    VERSION: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["_type"] = type(self).__name__
        data["_version"] = self.VERSION
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_plain)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        from .checks import check_int
        from .errors import invalid

        if not isinstance(data, dict):
            raise invalid("config", type(data).__name__, f"a mapping of {cls.__name__}'s fields")
        data = dict(data)
        typ = data.pop("_type", cls.__name__)
        version = data.pop("_version", cls.VERSION)
        if typ != cls.__name__:
            raise invalid("_type", typ, cls.__name__)
        check_int(version, "_version", expected=f"an integer <= {cls.VERSION}")
        if version > cls.VERSION:
            raise invalid("_version", version, f"<= {cls.VERSION} (written by a newer deepseek)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise invalid("config", sorted(map(str, unknown)), f"only fields {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        from .errors import invalid

        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise invalid("config", text[:80], f"{cls.__name__} as JSON ({exc})") from None
        return cls.from_dict(data)


def _plain(value: Any) -> Any:
    """A numpy number as the JSON number it is (the checks accept them); anything else as its text."""
    import numbers

    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if isinstance(value, numbers.Real) else str(value)


def config_or_fields(cls: type[T], config: T | None, fields: dict[str, Any]) -> T:
    """``config`` itself, or ``cls(**fields)`` when no config is given (an entry point accepting either)."""
    from .errors import invalid

    if config is None:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise invalid(unknown[0], fields[unknown[0]], f"a field of {cls.__name__}: one of {sorted(known)}")
        return cls(**fields)
    if not isinstance(config, cls):
        raise invalid("config", type(config).__name__, f"a {cls.__name__}")
    if fields:
        raise invalid("kwargs", sorted(fields), "either a config or keyword fields, not both")
    return config


def read_text_file(path: Any, *, argument: str, what: str) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable, binary or non-UTF-8 file is an error naming ``argument``
    and the file (``what`` says what the file should be)."""
    from pathlib import Path

    from .errors import invalid

    if not isinstance(path, (str, Path)) or not str(path):
        raise invalid(argument, path, f"the path of {what}")
    path = Path(path)
    try:
        is_file, exists = path.is_file(), path.exists()
    except OSError as exc:  # e.g. a name too long for the file system (a YAML text given as a path)
        raise invalid(argument, f"{str(path)[:80]}...", f"the path of {what} ({exc.strerror or exc})") from None
    if not is_file:
        raise invalid(argument, str(path), f"an existing file: {what}" if not exists else f"a file, not a folder: {what}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise invalid(argument, str(path), f"a readable file: {what} ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(argument, str(path), f"{what} as UTF-8 text (byte {exc.start} is not UTF-8)") from None
    if "\x00" in text:
        raise invalid(argument, str(path), f"{what} as text (it holds NUL bytes: a binary file?)")
    return text


def read_yaml(path: Any, *, argument: str, what: str, mapping: bool = False) -> Any:
    """The parsed content of the YAML file ``path``; a missing, binary or malformed file is an error naming
    ``argument`` and the file (``what`` says what the file should be). ``mapping=True`` also requires a mapping
    at the top (an empty file gives ``{}``)."""
    import yaml

    from .errors import invalid

    text = read_text_file(path, argument=argument, what=what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f"line {where.line + 1}: " if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise invalid(argument, str(path), f"valid YAML: {what} ({line}{problem})") from None
    except RecursionError:
        raise invalid(argument, str(path), f"{what} nested less deeply") from None
    if mapping:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise invalid(argument, str(path), f"{what} with a mapping (key: value) at the top, not a "
                                               f"{type(data).__name__}")
    return data


def read_json(path: Any, *, argument: str, what: str, mapping: bool = False) -> Any:
    """The parsed content of the JSON file ``path``, with the same errors as :func:`read_yaml`."""
    from .errors import invalid

    text = read_text_file(path, argument=argument, what=what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(argument, str(path), f"valid JSON: {what} (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise invalid(argument, str(path), f"{what} nested less deeply") from None
    if mapping and not isinstance(data, dict):
        raise invalid(argument, str(path), f"{what} with an object at the top, not a {type(data).__name__}")
    return data


def field(data: dict[str, Any], key: str, types: type | tuple[type, ...], *, source: str,
          required: bool = True, default: Any = None) -> Any:
    """``data[key]`` checked against ``types``; a missing or mistyped field is one error naming the file
    (``source``) and the field."""
    from .errors import invalid

    if key not in data:
        if required:
            raise invalid(f"{source}: field {key!r}", "nothing", f"a {_type_names(types)}")
        return default
    value = data[key]
    bool_refused = isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
    if bool_refused or not isinstance(value, types):
        raise invalid(f"{source}: field {key!r}", value, f"a {_type_names(types)}")
    return value


def _type_names(types: type | tuple[type, ...]) -> str:
    names = {"str": "string", "int": "integer", "float": "number", "dict": "mapping", "list": "list",
             "bool": "true/false"}
    items = types if isinstance(types, tuple) else (types,)
    return " or ".join(dict.fromkeys(names.get(t.__name__, t.__name__) for t in items))
