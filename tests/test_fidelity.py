"""docs/FIDELITY.md and the paper recipes cannot drift apart: every table row that names a recipe key is checked
against recipes/limo-v1.yaml / limo-v3.yaml as limo.recipes.load_recipe resolves them."""

import importlib
import math
import re
from pathlib import Path

import pytest
import yaml

from limo.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "FIDELITY.md"
STATUSES = ("match", "differs", "not specified", "not measured")
COLUMNS = ["id", "version", "parameter", "published value", "source", "limo key", "limo value", "status"]


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows between the fidelity-table markers, as {column: cell}."""
    body = text.split("<!-- fidelity-table:start -->", 1)[1].split("<!-- fidelity-table:end -->", 1)[0]
    lines = [line.strip() for line in body.strip().splitlines() if line.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        assert len(cells) == len(COLUMNS), line
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


def code(cell: str) -> str | None:
    """The text inside backticks, or None for '-'."""
    if cell == "-":
        return None
    m = re.fullmatch(r"`(.*)`", cell)
    assert m, f"expected `...` or -, got {cell!r}"
    return m.group(1)


_SEGMENT = re.compile(r"(?P<name>\w+)(?:\((?P<arg>[\w.-]*)\))?(?P<index>\[(?:\d+|\*)\])?")


def resolve(recipe, path: str):
    """A key path on a loaded Recipe: a.b, a[0], a[*].b (every item), method(arg); or py:module.NAME."""
    if path.startswith("py:"):
        module, name = path[3:].rsplit(".", 1)
        return getattr(importlib.import_module(module), name)
    values, many = [recipe], False
    for part in path.split("."):
        m = _SEGMENT.fullmatch(part)
        assert m, f"bad key path segment {part!r} in {path!r}"
        out = []
        for v in values:
            v = v[m["name"]] if isinstance(v, dict) else getattr(v, m["name"])
            if m["arg"] is not None:
                v = v(m["arg"])
            if m["index"] == "[*]":
                out += list(v)
                many = True
            elif m["index"]:
                out.append(v[int(m["index"][1:-1])])
            else:
                out.append(v)
        values = out
    return values if many else values[0]


def same(actual, expected) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, (int, float)) and math.isclose(float(actual), float(expected), rel_tol=1e-9)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same(actual[k], expected[k]) for k in expected)
        )
    return actual == expected


def mismatches(recipes: dict[str, object], rows: list[dict[str, str]]) -> list[str]:
    out = []
    for row in rows:
        key = code(row["limo key"])
        if key is None:
            continue
        expected = yaml.safe_load(code(row["limo value"]))
        actual = resolve(recipes[row["version"]], key)
        if not same(actual, expected):
            out.append(f"{row['id']}: {key} is {actual!r}, FIDELITY.md says {expected!r} ({row['status']})")
    return out


@pytest.fixture(scope="module")
def rows():
    return table_rows(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recipes():
    return {v: load_recipe(ROOT / "recipes" / f"limo-{v}.yaml") for v in ("v1", "v3")}


def test_table_is_well_formed(rows):
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    for r in rows:
        assert r["version"] in ("v1", "v3"), r["id"]
        assert r["status"].split(":")[0] in STATUSES, f"{r['id']}: unknown status {r['status']!r}"
        if r["status"] == "match":
            assert code(r["limo key"]) and code(r["limo value"]) is not None, f"{r['id']}: a match names key+value"
            assert r["source"] not in ("", "-"), f"{r['id']}: a match cites its source"
        if r["status"].startswith("differs"):
            assert ":" in r["status"], f"{r['id']}: 'differs' says why"
    counts = {v: sum(r["status"] == "match" for r in rows if r["version"] == v) for v in ("v1", "v3")}
    assert counts["v1"] >= 20 and counts["v3"] >= 30, counts


def test_every_row_with_a_key_matches_the_recipes(rows, recipes):
    assert mismatches(recipes, rows) == []


def test_changing_a_matched_value_fails_the_check(rows):
    """The check is not vacuous: the v3 recipe with a changed learning rate, band or weak model fails it."""
    for override, row_id in [
        ("train.learning_rate=1e-5", "v3-lr"),
        (
            "difficulty.strong=[{engine: {model: x}, sampling: {temperature: 0.6}, n: 32, band: [0, 3]}]",
            "v3-band",
        ),
        ("difficulty.weak.n=8", "v3-weak-n"),
    ]:
        changed = {"v1": None, "v3": load_recipe(ROOT / "recipes" / "limo-v3.yaml", [override])}
        found = mismatches(changed, [r for r in rows if r["version"] == "v3"])
        assert any(m.startswith(f"{row_id}:") for m in found), (override, found)


def test_the_acceptance_values_are_match_rows(rows):
    """The values `limo curate ... --plan` must show are in the table as match rows, for both versions."""
    by_id = {r["id"]: r for r in rows}
    for row_id, value in [
        ("v3-weak-model", "Qwen/Qwen2.5-Math-7B-Instruct"),
        ("v3-weak-n", "4"),
        ("v3-strong-model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"),
        ("v3-strong-n", "32"),
        ("v3-band", "[1, 3]"),
        ("v3-profile", "limo"),
        ("v3-size", "800"),
        ("v1-size", "817"),
        ("v1-batch", "32"),
        ("v1-eval-aime", "16"),
    ]:
        assert by_id[row_id]["status"] == "match" and code(by_id[row_id]["limo value"]) == value, row_id
