"""KServe v2 / Open Inference Protocol tensors: JSON and the binary-tensor extension, both directions."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from .._errors import InvalidArgumentError, invalid
from .config import DATATYPES, NUMPY_TO_DATATYPE

HEADER_LENGTH = "inference-header-content-length"


class PayloadTooLarge(InvalidArgumentError):
    """The request body exceeds the server's limit (HTTP 413)."""


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
    try:
        request = json.loads(head)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid("body", "malformed JSON", f"a v2 inference request ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(request, dict):
        raise invalid("body", type(request).__name__, "a JSON object with 'inputs'")
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
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise invalid(f"inputs[{name}].shape", shape, "a list of sizes >= 0")
        datatype = spec.get("datatype")
        if datatype not in DATATYPES:
            raise invalid(f"inputs[{name}].datatype", datatype, f"one of {sorted(DATATYPES)}")
        size = (spec.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise invalid(f"inputs[{name}].parameters.binary_data_size", size,
                              f"a byte count within the {len(binary)} bytes after the JSON header")
            tensors[name] = _from_bytes(bytes(binary[offset:offset + size]), datatype, shape, name)
            offset += size
        else:
            if "data" not in spec:
                raise invalid(f"inputs[{name}].data", None, "the tensor's values (or binary_data_size)")
            tensors[name] = _from_json(spec["data"], datatype, shape, name)
    if offset != len(binary):
        raise invalid("body", f"{len(binary) - offset} bytes after the last binary tensor", "no trailing bytes")
    return request, tensors


def _from_json(data: Any, datatype: str, shape: list[int], name: str) -> np.ndarray:
    count = int(np.prod(shape)) if shape else 1
    if datatype == "BYTES":
        flat = list(_flatten(data))
        if not all(isinstance(v, str) for v in flat):
            raise invalid(f"inputs[{name}].data", "non-string values", "strings for datatype BYTES")
        array = np.array([v.encode() for v in flat], dtype=object)
    else:
        try:
            array = np.asarray(data, dtype=DATATYPES[datatype])
        except (ValueError, TypeError):
            raise invalid(f"inputs[{name}].data", "non-numeric values", f"numbers for datatype {datatype}") from None
        if array.dtype == object:
            raise invalid(f"inputs[{name}].data", "ragged lists", f"{count} numbers")
    if array.size != count:
        raise invalid(f"inputs[{name}].data", f"{array.size} values", f"{count} for shape {shape}")
    return array.reshape(shape)


def _flatten(data: Any) -> Any:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _from_bytes(raw: bytes, datatype: str, shape: list[int], name: str) -> np.ndarray:
    count = int(np.prod(shape)) if shape else 1
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
    default = bool((request.get("parameters") or {}).get("binary_data_output", False))
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
        flag = (o.get("parameters") or {}).get("binary_data")
        if flag is not None:
            per[o["name"]] = bool(flag)
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
            item["data"] = [v.decode() if isinstance(v, bytes) else str(v) for v in array.reshape(-1).tolist()]
        else:
            item["data"] = array.reshape(-1).tolist()
        items.append(item)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": items}
    if request_id is not None:
        body["id"] = request_id
    head = json.dumps(body, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _to_bytes(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in array.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(array).tobytes()
