"""``ebv-cl run`` user errors: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import pytest
import yaml

from ebv_cl.cli import main

GOOD = {"scenario": "digits", "strategies": ["fc+naive"], "epochs": 1}


def _write(tmp_path, data, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


@pytest.mark.parametrize(
    "make_args, match",
    [
        (lambda p: ["run", str(p / "missing.yaml")], r"config file '.*missing.yaml' does not exist"),
        (lambda p: ["run", _write(p, {**GOOD, "epoch": 2})], r"unknown key 'epoch' in top level; valid keys: "),
        (lambda p: ["run", _write(p, {**GOOD, "epochs": "x"})], r"epochs = 'x': expected int, got str"),
        (lambda p: ["run", _write(p, {**GOOD, "scenario": "nope"})], r"unknown scenario 'nope'"),
        (lambda p: ["run", _write(p, {**GOOD, "strategies": ["fc+bogus"]})], r"unknown method 'bogus'"),
        (lambda p: ["run", _write(p, {**GOOD, "strategies": ["zz+naive"]})], r"unknown head 'zz'"),
        (lambda p: ["run", _write(p, {**GOOD, "strategies": ["ncm+icarl"]})], r"'ncm\+icarl' is not supported"),
        (lambda p: ["run", _write(p, {**GOOD, "scenario": {"include": "digits", "n_experiments": 5}})],
         r"scenario: unknown key\(s\) \['n_experiments'\]"),
        (lambda p: ["run", _write(p, {**GOOD, "backbone": "nonet"})], r"backbone.name = 'nonet': unknown backbone"),
        (lambda p: ["run", _write(p, GOOD), "bank.size=3"], r"unknown key 'size' in bank"),
        (lambda p: ["run", _write(p, GOOD), "epochs"], r"override 'epochs' must look like key.sub=value"),
        (lambda p: ["run", _write(p, GOOD), "--resume"], r"--resume needs --out DIR"),
        (lambda p: ["run", _write(p, "a: [1\n")], r"is not valid YAML"),
        (lambda p: ["run", "bogus=1"], r"unknown key 'bogus' in top level"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, make_args, match):
    import re

    status = main(make_args(tmp_path))
    err = capsys.readouterr().err
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("ebv-cl: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(match, lines[0]), lines[0]


def test_existing_out_without_resume_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"runs": []}')
    assert main(["run", _write(tmp_path, GOOD), "--out", str(out)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_overrides_are_accepted_after_options():
    from ebv_cl.cli import _parse, build_parser

    args = _parse(build_parser(), ["run", "c.yaml", "--out", "x", "epochs=1", "--resume", "seeds=[0,1]"])
    assert args.config == "c.yaml" and args.out == "x" and args.resume
    assert args.overrides == ["epochs=1", "seeds=[0,1]"]
    args = _parse(build_parser(), ["run", "c.yaml", "lr=0.1", "--out", "x", "epochs=1"])
    assert args.overrides == ["lr=0.1", "epochs=1"]


def test_unknown_options_are_still_refused(capsys):
    from ebv_cl.cli import _parse, build_parser

    with pytest.raises(SystemExit) as info:
        _parse(build_parser(), ["run", "c.yaml", "--out", "x", "--bogus", "epochs=1"])
    assert info.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(build_parser(), ["bank", "stats", "p.ebv", "extra=1"])
