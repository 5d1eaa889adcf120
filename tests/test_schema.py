"""The config reference is generated from the code, complete, and the README's copy cannot drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ebv_cl.cli import main
from ebv_cl.errors import ConfigError
from ebv_cl.run import BackboneConfig, BankConfig, RunConfig, StrategyConfig, config_from_dict
from ebv_cl.run.schema import (
    README_BEGIN,
    README_END,
    dataclass_docs,
    docstring_args,
    readme_with_schema,
    schema_markdown,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    assert README_BEGIN in text and README_END in text
    assert readme_with_schema(text) == text, (
        "README.md's config reference differs from `ebv-cl config --schema`; regenerate it with "
        "`python -m ebv_cl.run.schema --write README.md`"
    )


@pytest.mark.parametrize("cls", [RunConfig, BankConfig, BackboneConfig, StrategyConfig])
def test_every_config_field_is_documented(cls):
    docs = dataclass_docs(cls)
    undocumented = [f.name for f in dataclasses.fields(cls) if f.init and not docs.get(f.name)]
    assert not undocumented, f"add {undocumented} to the Attributes: section of {cls.__name__}'s docstring"


def test_reference_names_the_keys_users_had_to_guess():
    text = schema_markdown()
    for key in ("hidden_sizes", "test_fraction", "split_seed", "classes_per_experience", "leftover", "base_classes",
                "sampled_negatives", "holdout_fraction", "batch_size_mem", "time_budget", "`path`", "**required**"):
        assert key in text, key
    assert "| `class_incremental` | `classes_per_experience` | list[list[int]] or null | `null` | Instead" in text


def test_docstring_args_reads_continuation_lines():
    def f(a, b):
        """Doc.

        Args:
            a: First line
                continued.
            b: Second.

        Returns:
            Nothing.
        """

    assert docstring_args(f) == {"a": "First line continued.", "b": "Second."}


def test_missing_required_keys_are_reported_together():
    with pytest.raises(ConfigError, match=r"missing keys 'scenario', 'strategies' in top level \(expected scenario: .*; strategies: list"):
        config_from_dict({"epochs": 1})


def test_unknown_keys_are_reported_together():
    with pytest.raises(ConfigError, match=r"unknown keys 'epoch', 'seed' in top level; valid keys"):
        config_from_dict({"scenario": "digits", "strategies": ["fc"], "epoch": 1, "seed": 0})


def test_cli_config_schema_and_resolve(tmp_path, capsys):
    assert main(["config", "--schema"]) == 0
    assert capsys.readouterr().out == schema_markdown()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("scenario: digits\nstrategies: [ebv+der]\n", encoding="utf-8")
    assert main(["config", str(cfg), "epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "epochs: 3" in out and "n_experiences: 5" in out and "method: der" in out
    assert main(["config"]) == 2
    assert "needs CONFIG" in capsys.readouterr().err
