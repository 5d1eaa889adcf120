"""``Registry``: one strict ``create`` for everything a YAML file can name."""

from __future__ import annotations

import pytest

from ebv_cl.errors import ConfigError, UnknownOptionError
from ebv_cl.registry import Registry


class _Thing:
    def __init__(self, size, *, colour="red", weight=1.0):
        self.size, self.colour, self.weight = size, colour, weight


def test_create_refuses_unknown_options_with_one_error_type():
    reg = Registry("thing", fixed=("size",))
    reg.register("plain")(lambda size, *, colour="red": (size, colour))
    reg.register("forwarding", options=_Thing)(lambda size, **kwargs: _Thing(size, **kwargs))
    reg.register("bare", options=False)(lambda size, **kwargs: size)
    assert reg.create("plain", 3, colour="blue") == (3, "blue")
    assert reg.create("forwarding", size=2, weight=2.0).weight == 2.0
    assert list(reg.options("forwarding")) == ["colour", "weight"] and reg.options("bare") == {}
    for name, bad in (("plain", "weight"), ("forwarding", "shape"), ("bare", "colour")):
        with pytest.raises(UnknownOptionError, match=rf"unknown option\(s\) \['{bad}'\] for thing '{name}'"):
            reg.create(name, 1, **{bad: 0})
    assert issubclass(UnknownOptionError, ConfigError) and issubclass(UnknownOptionError, TypeError)
    with pytest.raises(ValueError, match="unknown thing 'nope'; expected one of: bare, forwarding, plain"):
        reg.create("nope")


@pytest.mark.parametrize(
    "call",
    [
        lambda: __import__("ebv_cl.heads", fromlist=["x"]).create_head("fc", 4, colour=1),
        lambda: __import__("ebv_cl.models", fromlist=["x"]).create_backbone("mlp", input_shape=(1, 8, 8), width=3),
        lambda: __import__("ebv_cl.data", fromlist=["x"]).load_dataset("digits", colour=1),
        lambda: __import__("ebv_cl.index.kinds", fromlist=["x"]).check_options("hnsw", "auto", {"nprobe": 3}),
    ],
)
def test_every_registry_refuses_unknown_options_the_same_way(call):
    with pytest.raises(UnknownOptionError, match=r"unknown option\(s\) \[.*\] for .*; valid options: "):
        call()


def test_traits_travel_with_the_entry():
    from ebv_cl.heads import HEADS

    reg = Registry("thing")
    reg.register("a", needs_x=True)(lambda: 1)
    assert reg.traits("a") == {"needs_x": True}
    reg.traits("a")["needs_x"] = False  # a copy
    assert reg.traits("a") == {"needs_x": True}
    assert [h for h in HEADS.names() if HEADS.traits(h).get("needs_bank")] == ["ebv"]
    assert HEADS.traits("hadamard") == {"capacity_option": "max_classes"}


def test_a_run_without_a_bank_head_generates_no_bank(tmp_path):
    from ebv_cl.run import config_from_dict, run_config

    config = config_from_dict({"scenario": {"include": "digits", "n_experiences": 2}, "strategies": ["hadamard+naive"],
                               "seeds": [0], "epochs": 1, "progress": False, "threads": 1, "checkpoint": False})
    messages: list[str] = []
    run_config(config, out_dir=tmp_path, log=messages.append)
    assert not (tmp_path / "bank.ebv").exists() and not [m for m in messages if "generating the EBV bank" in m]


def test_registration_order_option_source_and_unregister():
    reg = Registry("thing")

    def settings(head, /, *, size: int = 3):
        return {"size": size}

    reg.register("b", options=settings)(lambda: 2)
    reg.register("a", options=False)(lambda: 1)
    assert reg.in_order() == ["b", "a"] and reg.names() == ["a", "b"]
    assert reg.option_source("b") is settings and reg.option_source("a") is None
    assert list(reg.options("b")) == ["size"]  # the positional-only head is not an option
    reg.unregister("b")
    assert reg.in_order() == ["a"] and "b" not in reg
    with pytest.raises(ValueError, match="unknown thing 'b'"):
        reg.unregister("b")
    reg.register("b")(lambda: 3)  # the name is free again
