"""A broken torch/torchvision/Avalanche install gives one ``ebv-cl: error:`` line with the fix, not a traceback."""

from __future__ import annotations

import argparse

import pytest

from ebv_cl import cli
from ebv_cl.cli import environment


def _parser_raising(exc: BaseException) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebv-cl")
    sub = parser.add_subparsers(dest="command")

    def fail(args):
        raise exc

    sub.add_parser("go").set_defaults(func=fail)
    return parser


def _broken(name: str, exc: Exception):
    real = environment._import

    def fake(module: str) -> None:
        if module == name:
            raise exc
        real(module)

    return fake


def test_mismatched_torchvision_is_one_line_with_the_cpu_fix(monkeypatch, capsys):
    error = RuntimeError("operator torchvision::nms does not exist")
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(error))
    monkeypatch.setattr(environment, "_import", _broken("torchvision", error))
    monkeypatch.delenv("EBV_CL_DEBUG", raising=False)
    assert cli.main(["go"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebv-cl: error: cannot import torchvision (RuntimeError: operator")
    assert environment.CPU_INSTALL in err[0] and "torch " in err[0]


def test_missing_avalanche_names_the_package(monkeypatch, capsys):
    error = ModuleNotFoundError("No module named 'avalanche'", name="avalanche")
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(error))
    monkeypatch.setattr(environment, "_import", _broken("avalanche", error))
    monkeypatch.delenv("EBV_CL_DEBUG", raising=False)
    assert cli.main(["go"]) == 2
    assert "pip install 'avalanche-lib>=0.6,<0.7'" in capsys.readouterr().err


def test_other_runtime_errors_keep_their_traceback(monkeypatch):
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(RuntimeError("a bug")))
    monkeypatch.delenv("EBV_CL_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["go"])


def test_project_errors_deriving_from_runtime_error_stay_one_line(monkeypatch, capsys):
    from ebv_cl.errors import BankFullError

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(BankFullError(10, 9, 2)))
    monkeypatch.delenv("EBV_CL_DEBUG", raising=False)
    assert cli.main(["go"]) == 2
    assert capsys.readouterr().err.startswith("ebv-cl: error: bank is full")


def test_healthy_install_diagnoses_nothing():
    assert environment.diagnose() is None


def test_cli_does_not_print_avalanche_import_noise():
    """Avalanche imports qpsolvers (for GEM); its "no QP solver found" warning is not the user's business."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "ebv_cl", "config", str(root / "examples" / "configs" / "peers-digits.yaml")],
        capture_output=True, text=True, timeout=240, cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert "strategies:" in done.stdout
    assert "QP solver" not in done.stderr and "Warning" not in done.stderr, done.stderr
