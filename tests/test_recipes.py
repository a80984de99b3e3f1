"""Recipe loading: dataclass building with clear errors, --set overrides, config hashes."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from limo.errors import LimoError
from limo.recipes import apply_overrides, build, config_hash, load_yaml


@dataclass
class Inner:
    k: int = 1
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    lr: float = 5e-6
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    note: str | None = None

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError("lr must be > 0")


def test_build_nested_and_lists():
    cfg = build(Outer, {"lr": 1, "inner": {"k": 3}, "items": [{"mode": "b"}], "note": None})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.inner == Inner(k=3) and cfg.items == [Inner(mode="b")]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"bogus": 1}, r"config: unknown key\(s\) \['bogus'\]"),
        ({"inner": {"k": "three"}}, r"config.inner.k: expected int"),
        ({"inner": {"mode": "c"}}, r"config.inner.mode: 'c' is not one of \['a', 'b'\]"),
        ({"items": [{"k": 1}, {"nope": 2}]}, r"config.items\[1\]: unknown key"),
        ({"lr": -1}, r"config: lr must be > 0"),
        ({"lr": "fast"}, r"config.lr: expected a number"),
    ],
)
def test_build_errors_name_the_key(data, message):
    with pytest.raises(LimoError, match=message):
        build(Outer, data)


def test_overrides_parse_yaml_values():
    data = apply_overrides({"train": {"epochs": 15}}, ["train.epochs=2", "train.lr=1e-4", "eval.benchmarks=[a, b]"])
    assert data == {"train": {"epochs": 2, "lr": "1e-4"}, "eval": {"benchmarks": ["a", "b"]}}
    assert build(Outer, {"lr": data["train"]["lr"]}).lr == 1e-4
    with pytest.raises(LimoError, match="key=value"):
        apply_overrides({}, ["novalue"])


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(Outer()) == config_hash(Outer())
    assert config_hash(Outer()) != config_hash(Outer(lr=1e-5))


def test_load_yaml_errors(tmp_path):
    with pytest.raises(LimoError, match="recipe not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(LimoError, match="invalid YAML"):
        load_yaml(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(LimoError, match="mapping at the top level"):
        load_yaml(top)
