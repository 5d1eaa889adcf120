"""Adding a method touches one place: a ``METHODS`` entry carries its builder, options and traits.

A toy method registered here (and removed after) is validated, documented, refused where its traits say so, and
trained for real by ``ebv-cl run`` on a 2-experience digits stream, without any other file knowing its name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("avalanche")

from ebv_cl.continual.distributed import unsupported_reason  # noqa: E402
from ebv_cl.continual.strategies import StrategySpec, method_names  # noqa: E402
from ebv_cl.continual.strategies.methods import METHODS, MethodParts, method_defaults  # noqa: E402
from ebv_cl.errors import ConfigError  # noqa: E402
from ebv_cl.run import config_from_dict, run_config  # noqa: E402
from ebv_cl.run.schema import schema_markdown  # noqa: E402

SEEN: list[dict[str, Any]] = []


def _toy_options(head: str, /, *, scale: float = 1.0, storage: str = "reservoir") -> dict[str, Any]:
    """The toy's options.

    Args:
        scale: Multiplies nothing; checked to be > 0.
        storage: The buffer kind (only ``reservoir``).
    """
    if not (isinstance(scale, (int, float)) and scale > 0):
        raise ConfigError(f"scale of method 'toy' = {scale!r}: expected a number > 0")
    return {"scale": float(scale), "storage": storage}


def _toy(parts: MethodParts) -> Any:
    """Replay from a reservoir buffer, plus a plugin that records what it saw after each experience."""
    from avalanche.core import SupervisedPlugin
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    class Record(SupervisedPlugin):
        def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
            SEEN.append({"experience": strategy.experience.current_experience,
                         "buffer": len(replay.storage_policy.buffer), "scale": parts.spec.method_options["scale"]})

    size = parts.spec.buffer_size
    replay = ReplayPlugin(mem_size=size, storage_policy=ReservoirSamplingBuffer(max_size=size))
    return parts.template([replay, Record()])


@pytest.fixture
def toy_method():
    METHODS.register("toy", options=_toy_options, buffer=True, rejects={"ncm": "the toy cannot train ncm"})(_toy)
    SEEN.clear()
    try:
        yield "toy"
    finally:
        METHODS.unregister("toy")


def test_a_registered_method_is_validated_from_its_entry(toy_method):
    assert method_names()[-1] == "toy" and method_defaults("toy") == {"scale": 1.0, "storage": "reservoir"}
    spec = StrategySpec(head="fc", method="toy", buffer_size=10, method_options={"scale": 2})
    assert spec.method_options == {"scale": 2.0, "storage": "reservoir"}
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['alpha'\] for method 'toy'; valid options: scale"):
        StrategySpec(head="fc", method="toy", buffer_size=10, method_options={"alpha": 1})
    with pytest.raises(ConfigError, match="scale of method 'toy' = -1"):
        StrategySpec(head="fc", method="toy", buffer_size=10, method_options={"scale": -1})
    with pytest.raises(ConfigError, match="method 'toy' keeps a replay memory: buffer_size must be >= 1"):
        StrategySpec(head="fc", method="toy", buffer_size=0)
    with pytest.raises(ConfigError, match="'ncm\\+toy' is not supported: the toy cannot train ncm"):
        StrategySpec(head="ncm", method="toy", buffer_size=10)
    assert "not supported by data-parallel training" in unsupported_reason("fc", "toy")
    assert "| `toy` | `scale` | float | `1.0` | Multiplies nothing; checked to be > 0. |" in schema_markdown()


def test_a_registered_method_runs_through_ebv_cl_run(toy_method, tmp_path):
    raw = {"scenario": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 2},
           "backbone": {"name": "mlp", "options": {"hidden_sizes": [32]}},
           "strategies": [{"head": "fc", "method": "toy", "method_options": {"scale": 3}}], "seeds": [0],
           "epochs": 1, "batch_size": 64, "lr": 0.05, "buffer_size": 40, "threads": 1, "progress": False}
    with pytest.raises(ConfigError, match=r"strategies\[0\] \(ncm\+toy\): .*the toy cannot train ncm"):
        config_from_dict({**raw, "strategies": [{"head": "ncm", "method": "toy"}]})
    config = config_from_dict(raw)
    assert config.specs[0].method_options == {"scale": 3.0, "storage": "reservoir"}
    run_config(config, out_dir=tmp_path / "out", log=lambda m: None)
    assert [s["experience"] for s in SEEN] == [0, 1] and all(s["scale"] == 3.0 for s in SEEN)
    assert all(s["buffer"] == 40 for s in SEEN)  # each experience of digits has far more than 40 samples
    (record,) = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert record["strategy"] == "fc+toy" and record["method"] == "toy"
    assert len(record["accuracy_matrix"]) == 2 and record["final_accuracy"] > 0.2
