"""KServe v2 / Open Inference Protocol tensors: JSON and the binary-tensor extension, both directions.

What a request may hold: standard JSON (no ``NaN``/``Infinity``) nested at most :data:`MAX_JSON_DEPTH` levels;
tensors of at most :data:`~deepseek.serve.config.MAX_DIMS` dimensions whose values fit their datatype — a
floating-point input holding NaN or an infinity (or a number beyond its datatype's range, such as 1e39 for FP32) is
refused, naming the input, in JSON and binary form alike; integers must be whole numbers within range. A response
is always standard JSON: an output holding NaN or an infinity cannot be written as a JSON tensor and is refused
(:class:`UnencodableOutput`, HTTP 422, naming the output) unless that output was asked for in binary form, where the
raw IEEE values travel unchanged.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from .._core.checks import check_choice, check_flag
from .._core.errors import DeepSeekError, InvalidArgumentError, invalid
from .config import DATATYPES, MAX_DIMS, NUMPY_TO_DATATYPE

HEADER_LENGTH = "inference-header-content-length"
MAX_JSON_DEPTH = 64  # nesting levels of a request's JSON (a tensor's nested data counts one level a dimension)


class PayloadTooLarge(InvalidArgumentError):
    """The request body exceeds the server's limit (HTTP 413)."""


class UnencodableOutput(DeepSeekError):
    """The model's output for this request holds NaN or an infinity, which JSON cannot carry (HTTP 422)."""


def loads(text: bytes | str, what: str, example: str, *, skip_data: bool = False) -> Any:
    """The JSON ``text`` (``what`` names it in errors): malformed, holding ``NaN``/``Infinity`` or a number out of
    range (``1e400``), or nested deeper than :data:`MAX_JSON_DEPTH` is an :class:`InvalidArgumentError` naming
    where."""

    try:
        data = json.loads(text)
    except RecursionError:
        raise invalid(what, "JSON nested too deeply", f"at most {MAX_JSON_DEPTH} levels of nesting") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise invalid(what, "malformed JSON", f"e.g. {example} ({reason})") from None
    check_json(data, what, skip_data=skip_data)
    return data


def check_json(data: Any, what: str, *, skip_data: bool = False) -> None:
    """Refuse ``data`` nested deeper than :data:`MAX_JSON_DEPTH` or holding a non-finite number (out of range in
    the text, like ``1e400``); ``skip_data``: leave the values of tensors (``inputs[i].data``) to their own check."""
    stack: list[tuple[Any, int, str]] = [(data, 1, what)]
    while stack:
        obj, depth, where = stack.pop()
        if not isinstance(obj, (list, dict)):
            if type(obj) is float and not math.isfinite(obj):
                raise invalid(where, "NaN or an infinite number", "finite numbers")
            continue
        if depth > MAX_JSON_DEPTH:
            raise invalid(what, "JSON nested too deeply", f"at most {MAX_JSON_DEPTH} levels of nesting (at {where[:80]}...)")
        if isinstance(obj, dict):
            items = obj.items()
        else:
            kinds = set(map(type, obj))
            if float in kinds and not all(map(math.isfinite, (v for v in obj if type(v) is float))):
                raise invalid(where, "NaN or an infinite number", "finite numbers")
            if not kinds & {list, dict}:
                continue
            items = enumerate(obj)
        for key, value in items:
            if type(value) is float and not math.isfinite(value):
                raise invalid(f"{where}.{key}", "NaN or an infinite number", "finite numbers")
            if isinstance(value, (list, dict)):
                if skip_data and key == "data" and where.startswith(f"{what}.inputs["):
                    stack.append(([], depth + 1, where))  # its depth and values: checked with the tensor
                    continue
                stack.append((value, depth + 1, f"{where}.{key}" if isinstance(obj, dict) else f"{where}[{key}]"))


def parse_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The request's JSON part and its input tensors by name."""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise invalid("Inference-Header-Content-Length", header_length, "an integer byte count") from None
        if not 0 < n <= len(body):
            raise invalid("Inference-Header-Content-Length", n, f"a length within the {len(body)}-byte body")
        head, binary = body[:n], memoryview(body)[n:]
    else:
        head, binary = body, memoryview(b"")
    request = loads(bytes(head), "body", '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", '
                    '"data": [1, 2, 3, 4]}]}', skip_data=True)
    if not isinstance(request, dict):
        raise invalid("body", type(request).__name__, "a JSON object with 'inputs'")
    if not isinstance(request.get("parameters", {}), (dict, type(None))):
        raise invalid("parameters", type(request["parameters"]).__name__, "an object")
    if "id" in request and not isinstance(request["id"], str):
        raise invalid("id", request["id"] if isinstance(request["id"], (int, float)) else type(request["id"]).__name__,
                      "a string")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise invalid("inputs", inputs if inputs is None else type(inputs).__name__, "a non-empty list of tensors")
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for i, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise invalid(f"inputs[{i}]", type(spec).__name__, "an object with name, shape, datatype, data")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"inputs[{i}].name", name, "a tensor name")
        if name in tensors:
            raise invalid(f"inputs[{i}].name", name, "each input once")
        shape = spec.get("shape")
        if not isinstance(shape, list) or len(shape) > MAX_DIMS or \
                not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise invalid(f"inputs[{name}].shape", shape, f"a list of at most {MAX_DIMS} sizes >= 0")
        datatype = spec.get("datatype")
        check_choice(datatype, f"inputs[{name}].datatype", DATATYPES)
        spec_parameters = spec.get("parameters") or {}
        if not isinstance(spec_parameters, dict):
            raise invalid(f"inputs[{name}].parameters", type(spec_parameters).__name__, "an object")
        size = spec_parameters.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise invalid(f"inputs[{name}].parameters.binary_data_size", size,
                              f"a byte count within the {len(binary)} bytes after the JSON header")
            tensors[name] = _finite(_from_bytes(bytes(binary[offset:offset + size]), datatype, shape, name), name)
            offset += size
        else:
            if "data" not in spec:
                raise invalid(f"inputs[{name}].data", None, "the tensor's values (or binary_data_size)")
            tensors[name] = _finite(_from_json(spec["data"], datatype, shape, name), name)
    if offset != len(binary):
        raise invalid("body", f"{len(binary) - offset} bytes after the last binary tensor", "no trailing bytes")
    return request, tensors


def _from_json(data: Any, datatype: str, shape: list[int], name: str) -> np.ndarray:
    count = math.prod(shape)
    where = f"inputs[{name}].data"
    if datatype == "BYTES":
        flat = _flatten(data, where)
        if not all(isinstance(v, str) for v in flat):
            raise invalid(where, "non-string values", "strings for datatype BYTES")
        array = np.array([v.encode() for v in flat], dtype=object)
    else:
        target = np.dtype(DATATYPES[datatype])
        try:
            values = np.asarray(data)  # what the JSON holds, before any conversion
        except (ValueError, TypeError, OverflowError):
            raise invalid(where, "ragged or non-numeric values", f"{count} numbers for datatype {datatype}") from None
        if values.ndim > MAX_DIMS:
            raise invalid(where, f"values nested {values.ndim} levels deep", f"at most {MAX_DIMS} levels")
        if values.dtype == object and values.size and all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in values.reshape(-1)):
            raise invalid(where, "integers beyond 64 bits", f"numbers within the range of {datatype}")
        if values.size and (values.dtype.kind not in "biuf" or (values.dtype.kind == "b" and target.kind != "b")):
            what = {"U": "non-numeric values", "O": "ragged or non-numeric values", "b": "true/false values"}.get(
                values.dtype.kind, f"{values.dtype} values")
            raise invalid(where, what, f"numbers for datatype {datatype}")
        if target.kind == "b" and values.size and values.dtype.kind != "b":
            raise invalid(where, f"{values.dtype} values", "true/false values for datatype BOOL")
        if target.kind in "iu" and values.size:
            if values.dtype.kind == "f" and not (np.isfinite(values).all() and (values == np.round(values)).all()):
                raise invalid(where, "fractional or non-finite values", f"whole numbers for datatype {datatype}")
            info = np.iinfo(target)
            if values.min() < info.min or values.max() > info.max:
                raise invalid(where, f"values in [{values.min()}, {values.max()}]",
                              f"integers in [{info.min}, {info.max}] for datatype {datatype}")
        with np.errstate(over="ignore", invalid="ignore"):
            array = values.astype(target) if values.size else np.zeros(values.shape, target)
    if array.size != count:
        raise invalid(where, f"{array.size} values", f"{count} for shape {shape}")
    return array.reshape(shape)


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` unless it is floating-point and holds NaN or an infinity."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise invalid(f"inputs[{name}].data", f"{bad} NaN or infinite value(s) (or numbers beyond the range of "
                      f"{NUMPY_TO_DATATYPE.get(array.dtype.name, array.dtype.name)})", "finite numbers")
    return array


def _flatten(data: Any, where: str) -> list[Any]:
    """Nested lists' leaves, in order (no deeper than :data:`MAX_DIMS`)."""
    out: list[Any] = []
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth >= MAX_DIMS:
                raise invalid(where, "values nested too deeply", f"at most {MAX_DIMS} levels")
            stack.extend((v, depth + 1) for v in reversed(item))
        else:
            out.append(item)
    return out


def _from_bytes(raw: bytes, datatype: str, shape: list[int], name: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise invalid(f"inputs[{name}]", "truncated BYTES element", "4-byte lengths followed by the bytes")
            (n,) = struct.unpack_from("<I", raw, pos)
            items.append(raw[pos + 4:pos + 4 + n])
            pos += 4 + n
        if len(items) != count or pos != len(raw):
            raise invalid(f"inputs[{name}]", f"{len(items)} BYTES elements", f"{count} for shape {shape}")
        return np.array(items, dtype=object).reshape(shape)
    dtype = np.dtype(DATATYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise invalid(f"inputs[{name}].parameters.binary_data_size", len(raw),
                      f"{count * dtype.itemsize} bytes for shape {shape} of {datatype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def binary_outputs_requested(request: dict[str, Any]) -> tuple[bool, dict[str, bool], list[str] | None]:
    """(binary by default, per-output binary choice, requested output names or None for all)."""
    default = check_flag((request.get("parameters") or {}).get("binary_data_output", False),
                         "parameters.binary_data_output", expected="true or false")
    outputs = request.get("outputs")
    if outputs is None:
        return default, {}, None
    if not isinstance(outputs, list):
        raise invalid("outputs", type(outputs).__name__, "a list of {name, parameters}")
    per, names = {}, []
    for i, o in enumerate(outputs):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise invalid(f"outputs[{i}]", o, "an object with a name")
        names.append(o["name"])
        parameters = o.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise invalid(f"outputs[{i}].parameters", type(parameters).__name__, "an object")
        flag = parameters.get("binary_data")
        if flag is not None:
            per[o["name"]] = check_flag(flag, f"outputs[{i}].parameters.binary_data",
                                        expected="true or false")
    return default, per, names


def encode_response(model: str, version: str, request_id: Any, outputs: dict[str, np.ndarray],
                    request: dict[str, Any]) -> tuple[bytes, int | None]:
    """The response body and, when it carries binary tensors, the JSON header's length."""
    default, per, names = binary_outputs_requested(request)
    if names is not None:
        unknown = [n for n in names if n not in outputs]
        if unknown:
            raise invalid("outputs", unknown, f"names among the model's outputs {list(outputs)}")
        outputs = {n: outputs[n] for n in names}
    items, blobs = [], []
    for name, value in outputs.items():
        array = np.asarray(value)
        datatype = "BYTES" if array.dtype.kind in "OSU" else NUMPY_TO_DATATYPE.get(array.dtype.name)
        if datatype is None:
            raise InvalidArgumentError(f"output {name!r}: numpy {array.dtype} has no v2 datatype")
        item: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if per.get(name, default):
            blob = _to_bytes(array, datatype)
            item["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif datatype == "BYTES":
            item["data"] = [_text(v, name) for v in array.reshape(-1).tolist()]
        else:
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise UnencodableOutput(f"output {name!r}: the model returned {int((~np.isfinite(array)).sum())} NaN or "
                                      "infinite value(s) for this input, which JSON cannot carry (ask for the output "
                                      "in binary form, parameters.binary_data: true, to receive them)")
            item["data"] = array.reshape(-1).tolist()
        items.append(item)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": items}
    if request_id is not None:
        body["id"] = request_id
    try:
        head = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as exc:  # a non-finite number the checks above did not see
        raise UnencodableOutput(f"outputs: {exc}") from None
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _text(value: Any, name: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise UnencodableOutput(f"output {name!r}: the model returned bytes that are not UTF-8 text, which a JSON "
                                  "tensor cannot carry (ask for the output in binary form)") from None
    return str(value)


def _to_bytes(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        items = [v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1).tolist()]
        return b"".join(struct.pack("<I", len(b)) + b for b in items)
    return np.ascontiguousarray(array).tobytes()
