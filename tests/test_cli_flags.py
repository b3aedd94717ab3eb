"""Flags that mean the same thing are spelled the same way across commands (older spellings kept as aliases), and an
error names the command's own spelling."""

import pytest

from deepseek.cli import build_parser
from deepseek.cli._common import flag_name


def _parse(*argv):
    return build_parser(argv[0]).parse_args(list(argv))


@pytest.mark.parametrize("command", ["compile", "optimize"])
def test_target_and_calibration_samples_take_both_spellings(command):
    dest = {"compile": ("target_arch", "samples"), "optimize": ("target", "calib_samples")}[command]
    extra = ["-o", "x.onnx"] if command == "compile" else ["--data", "digits", "-o", "out"]
    for target, samples in (("--target", "--samples"), ("--target-arch", "--calib-samples")):
        args = _parse(command, "resnet18", target, "arm64", samples, "16", *extra)
        assert (getattr(args, dest[0]), getattr(args, dest[1])) == ("arm64", 16)


def test_bench_takes_the_model_positionally_like_every_other_command():
    assert _parse("bench", "resnet18").model == "resnet18"
    assert _parse("bench", "--model", "resnet18").model_option == "resnet18"  # the older spelling still parses
    assert _parse("quantize", "resnet18", "--calib-samples", "8", "-o", "q.onnx").samples == 8


def test_errors_name_the_command_own_spelling():
    parser = build_parser("compile")
    actions = parser.subcommands["compile"]._actions
    assert flag_name(actions, "target_arch") == "--target-arch" and flag_name(actions, "samples") == "--samples"
    actions = build_parser("optimize").subcommands["optimize"]._actions
    assert flag_name(actions, "target") == "--target" and flag_name(actions, "calib_samples") == "--calib-samples"


def test_bench_refuses_two_different_models(capsys):
    from deepseek.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", "resnet18", "--model", "resnet50"])
    assert exit_.value.code == 2 and "--model" in capsys.readouterr().err
