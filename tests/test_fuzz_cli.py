"""Bad input on every subcommand, driven by the CLI's own schema (its argparse parsers) and by a corpus of corrupt
files per format. Every case must end with exit status 2 and one line naming the flag or the file — never a
traceback, an "internal error", a changed input or a partial output.

The flag cases are generated from the parsers themselves (hypothesis draws a subcommand, one of its validated
flags and a value outside what the flag's type accepts), so a flag added tomorrow is fuzzed too; two schema
rules keep it that way: every numeric flag has a bounded type, and every flag that writes is a declared output.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _refusals import refused
from deepseek.cli import SUBCOMMANDS, build_parser

# flags whose name says they write something (a new writer must be declared: see test_every_writing_flag_is_declared)
WRITER_WORDS = ("output", "json", "plot", "png", "html", "report", "excluded", "grafana", "rules")
# ... except where the same name is read (data clean's --rules is the rules it applies; tune/stream configs)
READ_FLAGS = {("data", "clean", "--rules"), ("doctor", "--json"), ("optimize", "--quiet")}


def _leaves(parser: argparse.ArgumentParser, prefix: list[str]):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, [*prefix, name])


LEAVES = [(prefix, leaf) for name in SUBCOMMANDS for prefix, leaf in _leaves(build_parser(name).subcommands[name], [name])]


def _is_writer(prefix: list[str], action: argparse.Action) -> bool:
    if (*prefix, max(action.option_strings, key=len, default=action.dest)) in READ_FLAGS:
        return False
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction)):
        return False
    names = [*action.option_strings, action.dest]
    return any(w in n.lstrip("-").replace("-", "_").split("_") for n in names for w in WRITER_WORDS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Input files every base command line points at (the commands never get to read them: bad flags stop first)."""
    root = tmp_path_factory.mktemp("fuzz-inputs")
    (root / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)))
    (root / "train.py").write_text("print('never run')\n")
    (root / "tx.csv").write_text("tx_id,customer_id,amount,ts\n1,7,10.5,0\n")
    (root / "data.csv").write_text("content\nhello world, this is a row\n")
    (root / "config.yaml").write_text("lr: {type: log_uniform, low: 0.001, high: 0.1}\n")
    (root / "src.gguf").write_bytes(b"GGUF" + bytes(64))
    (root / "folder").mkdir()
    (root / "repo").mkdir()
    return root


def _base(prefix: list[str], leaf: argparse.ArgumentParser, corpus: Path, out: Path) -> list[str]:
    """A command line for ``prefix`` whose required arguments name existing inputs (or fresh outputs)."""
    files = {"model": corpus / "model.onnx", "script": corpus / "train.py", "transactions": corpus / "tx.csv",
             "input": corpus / "data.csv", "source": corpus / "src.gguf", "config": corpus / "config.yaml",
             "output": out / "fresh-output", "redis": "redis://127.0.0.1:1/0"}
    argv = list(prefix)
    if prefix == ["serve"]:
        return [*argv, "alert-rules"]
    for action in leaf._actions:
        if action.option_strings and not action.required:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.nargs == "?":
            continue
        value = str(files.get(action.dest, corpus / "model.onnx")) if not action.choices else next(iter(action.choices))
        argv += [action.option_strings[0], value] if action.option_strings else [value]
    return argv


def _bad_values(action: argparse.Action) -> st.SearchStrategy[str]:
    """Values the flag's type or choices must refuse."""
    junk = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
    if action.choices is not None:
        return st.one_of(st.sampled_from(["", "nosuch", "X" * 40]), junk).filter(lambda s: s not in action.choices)
    bounds = getattr(action.type, "bounds", None)
    if action.type is not None and getattr(action.type, "__name__", "") == "port":
        return st.one_of(st.integers(max_value=-1), st.integers(min_value=65536)).map(str) | st.just("http")
    if bounds is not None:
        low, high, above, below = (*bounds, None)[:4]
        floats_ok = "finite number" in action.type.__name__
        cases = [st.sampled_from(["nan", "inf", "-inf", "", "1e400", "one"]), junk.filter(lambda s: not _numeric(s))]
        if low is not None:
            cases.append(st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False).map(repr)
                         if floats_ok else st.integers(max_value=int(low) - 1).map(str))
        if above is not None:
            cases.append(st.floats(max_value=above, allow_nan=False, allow_infinity=False).map(repr))
        if below is not None:
            cases.append(st.floats(min_value=below, allow_nan=False, allow_infinity=False).map(repr))
        if high is not None:
            cases.append(st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False).map(repr))
        if not floats_ok:
            cases.append(st.sampled_from(["1.5", "2e3", "0x10"]))
        return st.one_of(*cases)
    raise AssertionError(f"no bad values known for {action}")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


FLAG_CASES = [(prefix, action) for prefix, leaf in LEAVES for action in leaf._actions
              if action.option_strings and (action.choices is not None or hasattr(action.type, "bounds")
                                            or getattr(action.type, "__name__", "") == "port")]
OUTPUT_CASES = [(prefix, leaf, dest, folder) for prefix, leaf in LEAVES
                for dest, folder in (leaf.get_default("_outputs") or {}).items()]


def test_every_numeric_flag_has_a_bounded_type():
    """int/float flags must say their range (count / number / port), so nonsense is refused while parsing."""
    loose = [(" ".join(prefix), a.option_strings) for prefix, leaf in LEAVES for a in leaf._actions
             if a.type in (int, float) and a.choices is None]
    assert not loose, loose


def test_every_writing_flag_is_declared_as_an_output():
    """A flag that writes is declared (declare_outputs), so cli checks it against the inputs before any work."""
    undeclared = [(" ".join(prefix), a.option_strings or a.dest) for prefix, leaf in LEAVES for a in leaf._actions
                  if _is_writer(prefix, a) and a.dest not in (leaf.get_default("_outputs") or {})]
    assert not undeclared, undeclared


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bad_flag_value_is_one_line_naming_the_flag(data, corpus, tmp_path, capfd):
    prefix, action = data.draw(st.sampled_from(FLAG_CASES), label="flag")
    leaf = dict((tuple(p), lf) for p, lf in LEAVES)[tuple(prefix)]
    value = data.draw(_bad_values(action), label="value")
    flag = max(action.option_strings, key=len)
    refused([*_base(prefix, leaf, corpus, tmp_path), f"{flag}={value}"], capfd, flag, *action.option_strings,
            unchanged=corpus)
    assert not (tmp_path / "fresh-output").exists()


@pytest.mark.parametrize("bad", ["the input", "a folder", "a file", "unwritable"])
@pytest.mark.parametrize("case", OUTPUT_CASES, ids=lambda c: " ".join(c[0]) + ":" + c[2])
def test_a_bad_output_is_refused_before_any_work(case, bad, corpus, tmp_path, capfd):
    prefix, leaf, dest, folder = case
    argv = _base(prefix, leaf, corpus, tmp_path)
    inputs = [a for a in argv if Path(a).exists() and str(corpus) in a]
    if bad == "the input":
        if not inputs:
            pytest.skip("no input path on this command line")
        value = inputs[0]
    elif bad == "a folder":
        if folder:
            pytest.skip("a folder is what this output is")
        value = str(corpus / "folder")
    elif bad == "a file":
        if not folder:
            pytest.skip("a file is what this output is")
        value = str(corpus / "config.yaml")
    else:
        value = "/proc/deepseek-nowhere/out"
    action = next(a for a in leaf._actions if a.dest == dest)
    if action.option_strings:
        argv += [max(action.option_strings, key=len), value]
        names = action.option_strings
    else:  # a positional output: replace the fresh path _base put there
        argv = [value if a == str(tmp_path / "fresh-output") else a for a in argv]
        names = [str(action.metavar or dest)]
    refused(argv, capfd, *names, unchanged=corpus)
    assert not (tmp_path / "fresh-output").exists() and not Path("/proc/deepseek-nowhere").exists()


# ---- corrupt files, one corpus per format -------------------------------------------------------------------

def _valid_files(root: Path) -> dict[str, Path]:
    """A real, valid file of each format, to truncate and to rename."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    x = torch.randn(1, 3, 8, 8)
    net(x)
    net.eval()
    valid = {}
    valid[".pt"] = root / "valid.pt"
    torch.save(net.state_dict(), valid[".pt"])
    from safetensors.torch import save_file

    valid[".safetensors"] = root / "valid.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, valid[".safetensors"])
    valid[".pt2"] = root / "valid.pt2"
    torch.export.save(torch.export.export(net, (x,)), valid[".pt2"])
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    valid[".onnx"] = root / "valid.onnx"
    onnx.save(helper.make_model(graph), valid[".onnx"])
    valid[".npy"] = root / "valid.npy"
    np.save(valid[".npy"], np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32))
    valid[".yaml"] = root / "valid.yaml"
    valid[".yaml"].write_text("lr:\n  type: log_uniform\n  low: 0.001\n  high: 0.1\nlayers: [1, 2, 3]\n")
    valid[".csv"] = root / "valid.csv"
    valid[".csv"].write_text("content,label\n" + "".join(f"\"row {i} with some words\",{i % 2}\n" for i in range(50)))
    import pandas as pd

    valid[".parquet"] = root / "valid.parquet"
    pd.DataFrame({"content": [f"row {i}" for i in range(50)], "label": [i % 2 for i in range(50)]}).to_parquet(
        valid[".parquet"])
    valid["tx"] = root / "tx.csv"
    from deepseek.stream import simulate_transactions

    simulate_transactions(20, 20, 2, seed=0).to_csv(valid["tx"], index=False)
    valid["rules"] = root / "rules.yaml"
    valid["rules"].write_text("length: [1, 512]\n")
    valid[".gguf"] = root / "valid.gguf"
    valid[".gguf"].write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))
    return valid


def _corrupt_variants(valid: Path) -> dict[str, bytes]:
    data = valid.read_bytes()
    rng = np.random.default_rng(1)
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("junk/data.txt", "not a model")
    variants = {"empty": b"", "random bytes": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                "truncated": data[: max(1, len(data) // 2)], "NUL bytes": bytes(2048),
                "a zip of junk": buf.getvalue(), "JSON": json.dumps({"not": "this format"}).encode(),
                "a PNG header": b"\x89PNG\r\n\x1a\n" + bytes(64)}
    if valid.suffix == ".npy":
        arrays = {"objects": np.array([{"a": 1}, None], dtype=object), "strings": np.array(["a", "b"]),
                  "an empty array": np.zeros((0, 3, 8, 8), np.float32),
                  "all NaN": np.full((2, 3, 8, 8), np.nan, np.float32), "a scalar": np.float32(1.0),
                  "infinities": np.full((2, 3, 8, 8), np.inf, np.float32)}
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=True)
            variants[name] = buf.getvalue()
    if valid.suffix == ".yaml":
        variants.update({"a list": b"- 1\n- 2\n", "a scalar": b"42\n", "bad indentation": b"a:\n b: 1\n  c: 2\n",
                         "deep nesting": b"[" * 20000 + b"]" * 20000, "latin-1": "clé: é\n".encode("latin-1"),
                         "unknown keys": b"no_such_key_xyz: 1\nanother_unknown: [1, 2]\n"})
    if valid.suffix == ".csv":
        del variants["truncated"]  # the first rows of a CSV file are a valid, shorter CSV file
    if valid.suffix in (".csv", ".parquet"):
        variants.update({"header only": b"content,label\n", "latin-1": "content\ncaf\xe9 cr\xe8me\n".encode("latin-1")})
    return variants


# (command line, the slot the corrupt file goes in); MODEL/CALIB/... are replaced by files
CORRUPT_CASES = {
    ".onnx": [["bench", "--model", "F", "--no-isolate", "--runs", "1"], ["profile", "F", "--runs", "1"],
              ["evaluate", "--model", "F", "--data", "digits"], ["quantize", "F", "--calib", "photos", "-o", "O.onnx"],
              ["prune", "F", "-o", "O.onnx"], ["compile", "F", "-o", "O.onnx"],
              ["optimize", "F", "--data", "digits", "-o", "OUT"]],
    ".pt2": [["export", "F", "-o", "O.onnx"], ["compile", "F", "-o", "O.onnx"], ["profile", "F", "--runs", "1"],
             ["prune", "F", "-o", "O.onnx"], ["quantize", "F", "--calib", "photos", "-o", "O.onnx"]],
    ".pt": [["export", "F", "--arch", "torchvision:resnet18", "-o", "O.onnx"], ["bench", "--model", "F", "--no-isolate"]],
    ".safetensors": [["export", "F", "--arch", "torchvision:resnet18", "-o", "O.onnx"],
                     ["evaluate", "--model", "F", "--arch", "torchvision:resnet18"]],
    ".npy": [["quantize", "VALID.onnx", "--calib", "F", "-o", "O.onnx"],
             ["compile", "VALID.onnx", "--quantize", "int8", "--calib", "F", "-o", "O.onnx"]],
    ".yaml": [["optimize", "--recipe", "F", "-o", "OUT"], ["tune", "--config", "F", "--output", "OUT", "--", "python", "x.py"],
              ["stream", "replay", "TX.csv", "--config", "F", "--report", "OUT"],
              ["data", "clean", "VALID.csv", "--text-columns", "content", "--rules", "F", "--output", "O.csv"]],
    ".csv": [["data", "clean", "F", "--text-columns", "content", "--rules", "RULES", "--output", "O.csv"],
             ["data", "profile", "F", "--json", "O.json"], ["stream", "replay", "F", "--report", "OUT"]],
    ".parquet": [["data", "clean", "F", "--text-columns", "content", "--rules", "RULES", "--output", "O.parquet"],
                 ["data", "profile", "F", "--json", "O.json"]],
    ".gguf": [["convert", "llama", "F", "-o", "OUT"]],
}


def _corrupt_params():
    for suffix, commands in CORRUPT_CASES.items():
        for command in commands:
            yield pytest.param(suffix, command, id=f"{suffix}:{' '.join(command[:2])}")


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, Path]:
    return _valid_files(tmp_path_factory.mktemp("fuzz-valid"))


@pytest.mark.parametrize(("suffix", "command"), list(_corrupt_params()))
def test_a_corrupt_file_is_one_line_naming_it(suffix, command, valid_files, tmp_path, capfd):
    for variant, content in _corrupt_variants(valid_files[suffix]).items():
        if variant == "empty" and command[:2] == ["stream", "replay"] and suffix == ".yaml":
            continue  # an empty stream config is every default: valid
        if variant == "header only" and command[:2] == ["data", "clean"]:
            continue  # cleaning a file without rows gives a file without rows (an empty shard is no error)
        bad = tmp_path / f"bad-{variant.replace(' ', '-')}{suffix}"
        bad.write_bytes(content)
        out = tmp_path / "out"
        argv = [str(bad) if a == "F" else str(valid_files[".onnx"]) if a == "VALID.onnx" else
                str(valid_files[".csv"]) if a == "VALID.csv" else str(valid_files["tx"]) if a == "TX.csv" else
                str(valid_files["rules"]) if a == "RULES" else str(out / a) if a in ("O.onnx", "O.csv", "O.json",
                                                                                        "O.parquet") else
                str(out / "folder") if a == "OUT" else a for a in command]
        # a text file that parses as a table without the named column is refused by the flag naming it
        also = ["--calib"] if suffix == ".npy" else ["--text-columns"] if "--text-columns" in command else []
        try:
            refused(argv, capfd, bad.name, *also, unchanged=valid_files[".pt"].parent)  # the valid files
        except AssertionError as exc:
            raise AssertionError(f"{variant} {suffix} in `deepseek {' '.join(command)}`: {exc}") from None
        assert bad.read_bytes() == content, variant
        written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        assert not written, (variant, written)
        bad.unlink()


# the commands that read a YAML config, with the rest of a valid command line (OUT: a fresh output folder)
CONFIG_READERS = [["optimize", "--recipe", "F", "-o", "OUT"], ["tune", "--config", "F", "--output", "OUT", "--", "python", "x.py"],
                  ["stream", "replay", "TX", "--config", "F", "--report", "OUT"],
                  ["data", "clean", "DATA", "--text-columns", "content", "--rules", "F", "--output", "OUT/o.csv"]]


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(CONFIG_READERS),
       content=st.one_of(st.binary(min_size=1, max_size=512).filter(_not_utf8),
                         st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=8),
                                      lambda inner: st.lists(inner, max_size=3), max_leaves=8).filter(
                             lambda v: v is not None).map(
                             lambda v: json.dumps(v).encode())))
def test_a_config_that_is_not_one_is_one_line_naming_the_file(command, content, corpus, tmp_path, capfd):
    """Binary files, and YAML documents that are a scalar or a list instead of a mapping, in every config reader."""
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    out = tmp_path / "out"
    argv = [str(config) if a == "F" else str(corpus / "tx.csv") if a == "TX" else str(corpus / "data.csv") if a == "DATA"
            else a.replace("OUT", str(out)) for a in command]
    refused(argv, capfd, config.name)
    assert config.read_bytes() == content and not out.exists()


@pytest.mark.parametrize("command", [["prune", "resnet18", "--ratio", "0.3"], ["export", "resnet18"],
                                     ["quantize", "resnet18", "--calib", "photos"]])
def test_shapes_that_do_not_fit_a_built_in_model_are_refused_not_ignored(command, tmp_path, capfd):
    """A built-in model brings its example inputs; --inputs may change their batch, never be dropped in silence."""
    line = refused([*command, "--inputs", "1x3", "-o", tmp_path / "out.onnx"], capfd, all_of=("--inputs", "(N, 3, 224, 224)"))
    assert "resnet18" in line and not (tmp_path / "out.onnx").exists()
