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
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        from ._errors import invalid

        data = dict(data)
        typ = data.pop("_type", cls.__name__)
        version = data.pop("_version", cls.VERSION)
        if typ != cls.__name__:
            raise invalid("_type", typ, cls.__name__)
        if version > cls.VERSION:
            raise invalid("_version", version, f"<= {cls.VERSION} (written by a newer deepseek)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise invalid("config", sorted(unknown), f"only fields {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        return cls.from_dict(json.loads(text))


def config_or_fields(cls: type[T], config: T | None, fields: dict[str, Any]) -> T:
    """``config`` itself, or ``cls(**fields)`` when no config is given (an entry point accepting either)."""
    from ._errors import invalid

    if config is None:
        return cls(**fields)
    if fields:
        raise invalid("kwargs", sorted(fields), "either a config or keyword fields, not both")
    return config


def read_yaml(path: Any, *, argument: str, what: str) -> Any:
    """The parsed content of the YAML file ``path``; a missing or malformed file is an error naming ``argument``
    and the file (``what`` says what the file should be)."""
    from pathlib import Path

    import yaml

    from ._errors import invalid

    path = Path(path)
    if not path.is_file():
        raise invalid(argument, str(path), what)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise invalid(argument, str(path), f"valid YAML ({str(exc).splitlines()[0]})") from None
