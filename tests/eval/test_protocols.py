"""Evaluation protocols: shipped ones, per-benchmark resolution, user protocols from a recipe, and errors.

.venv/bin/pytest tests/eval/test_protocols.py
"""

import pytest

from limo.errors import LimoError
from limo.eval.protocols import PROTOCOLS, get_protocol, protocol_from_dict
from limo.eval.run import EvalConfig


def test_shipped_protocols():
    assert set(PROTOCOLS) == {"greedy", "limo-v1", "limo-v3"}
    v3 = get_protocol("limo-v3")
    for sampled in ("aime24", "amc23", "cn_math_2024"):
        p = v3.for_benchmark(sampled)
        assert (p.n, p.temperature, p.top_p, p.max_tokens, p.metric, p.grading) == (
            4, 0.6, 1.0, 32768, "unbiased-pass@1", "boxed"
        )  # fmt: skip
    for greedy in ("math500", "gpqa_diamond", "olympiadbench"):
        p = v3.for_benchmark(greedy)
        assert (p.n, p.temperature, p.metric, p.grading) == (1, 0.0, "pass@1", "boxed")
    v1 = get_protocol("limo-v1")
    for sampled in ("aime24", "amc23", "cn_math_2024"):
        p = v1.for_benchmark(sampled)
        assert (p.n, p.temperature, p.metric, p.grading) == (16, 0.7, "unbiased-pass@1", "boxed")
    assert v1.for_benchmark("math500").n == 1 and v1.for_benchmark("math500").temperature == 0.0
    assert "issue #17" in v1.source and "§4.2" in v1.source and "§5" in v3.source
    assert get_protocol("greedy").default.grading == "extended"


def test_config_applies_the_protocol_per_benchmark_with_overrides_and_a_token_cap():
    cfg = EvalConfig(benchmarks=["aime24", "math500"], protocol="limo-v3", max_tokens=64)
    assert cfg.sampling("aime24").temperature == 0.6 and cfg.benchmark_protocol("aime24").n == 4
    assert cfg.sampling("math500").temperature == 0.0 and cfg.benchmark_protocol("math500").n == 1
    assert cfg.sampling("aime24").max_tokens == 64 and cfg.overrides() == {"max_tokens_cap": 64}
    forced = EvalConfig(benchmarks=["aime24"], protocol="limo-v3", n=1, grading="extended")
    assert forced.benchmark_protocol("aime24").n == 1 and forced.benchmark_protocol("aime24").metric == "pass@1"
    assert forced.benchmark_protocol("aime24").grading == "extended"


def test_user_protocol_from_a_recipe_eval_section():
    cfg = EvalConfig.from_dict(
        {
            "benchmarks": "aime24,math500",
            "protocol": "mine",
            "protocols": {
                "mine": {"default": {"grading": "boxed"}, "benchmarks": {"aime24": {"n": 8, "temperature": 0.7}}}
            },
        }
    )
    a, m = cfg.benchmark_protocol("aime24"), cfg.benchmark_protocol("math500")
    assert (a.n, a.temperature, a.metric, a.grading) == (8, 0.7, "unbiased-pass@1", "boxed")
    assert (m.n, m.temperature, m.grading) == (1, 0.0, "boxed")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"benchmarks": {"aime2024": {"n": 4}}}, "unknown benchmark 'aime2024'"),
        ({"default": {"samples": 4}}, "unknown key 'samples'"),
        ({"default": {"grading": "lenient"}}, "unknown grading rule 'lenient'"),
        ({"default": {"n": 0}}, "n must be >= 1"),
        ({"nope": {}}, "unknown key 'nope'"),
    ],
)
def test_bad_user_protocols_are_clear_errors(spec, message):
    with pytest.raises(LimoError, match=message):
        EvalConfig(benchmarks=["aime24"], protocol="mine", protocols={"mine": spec})


def test_unknown_protocol_names_the_known_ones():
    with pytest.raises(LimoError, match="unknown protocol 'paper-sampled'.*limo-v3"):
        EvalConfig(protocol="paper-sampled")
    assert protocol_from_dict("x", {}).default.n == 1
