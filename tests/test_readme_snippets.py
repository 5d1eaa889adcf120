"""The README's code blocks that claim to run do run, as written (they cannot drift from the API)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", text, flags=re.S)
    assert match, f"README.md has no python block after {marker!r}"
    return match.group(1)


def test_avalanche_snippet_runs_and_reloads_the_head(tmp_path, monkeypatch):
    pytest.importorskip("avalanche")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_snippet"}
    exec(compile(_block_after("<!-- avalanche-snippet -->"), "README.md", "exec"), namespace)  # noqa: S102
    assert sorted(namespace["again"].classes) == list(range(10))
    assert (tmp_path / "head.pt").is_file() and (tmp_path / "bank.ebv").is_file()
