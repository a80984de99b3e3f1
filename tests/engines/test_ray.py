"""The `ray` engine on a real local Ray cluster (2 CPUs = 2 worker processes) with the embedded model.

A cluster is started with `ray start --head` and reached through its address (as an existing cluster would be);
the driver-side cache is checked after a replica's process is killed mid-run.

    .venv/bin/pytest tests/engines/test_ray.py -v
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from limo.engines.base import EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache
from limo.errors import LimoError

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is 2+3?",
    "Name a prime number.",
    "What is 7 times 6?",
    "Is 15 even or odd?",
    "What is the square root of 81?",
    "How many sides does a hexagon have?",
    "What is 100 divided by 4?",
    "Write the number twelve in digits.",
]
PROMPTS = [[{"role": "user", "content": q}] for q in QUESTIONS]
GREEDY = SamplingParams(max_tokens=12)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """`ray start --head --block` with 2 CPUs and token auth (its own token); yields the address. Teardown stops
    exactly this cluster (SIGTERM to its `ray start`, which stops what it started), never other Ray processes."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "token")
    mp.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    port = _free_port()
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--port", str(port)]
    cmd += ["--num-cpus", "2", "--num-gpus", "0", "--include-dashboard=false", "--disable-usage-stats"]
    cmd += ["--object-store-memory", str(200 * 1024**2)]
    head = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert head.poll() is None, f"ray start exited with {head.returncode}"
            assert time.monotonic() < deadline, "ray start did not open its port in 180 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # the session started above: only this cluster's processes
            head.wait(timeout=30)
        mp.undo()


@pytest.fixture(scope="module")
def single_process_outputs(tmp_path_factory):
    """The reference: the plain hf engine in this process, same model, same chunk size, 1 torch thread like each
    replica (2 threads on a busy 2-core box are many times slower, see docs/PERFORMANCE.md)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache = GenerationCache(tmp_path_factory.mktemp("hf") / "gen.sqlite")
    engine = CachedEngine(EngineConfig(model="smollm2-135m", engine="hf", batch_size=2), cache)
    try:
        return [[c.text for c in row] for row in engine.generate(PROMPTS, GREEDY)]
    finally:
        engine.close()
        torch.set_num_threads(threads)


def _ray_engine(address: str, cache_path: Path, **backend_kwargs) -> CachedEngine:
    from limo.engines.ray import RayBackend

    cfg = EngineConfig(
        model="smollm2-135m", engine="ray", batch_size=2, replicas=2, ray_address=address, inner={"engine": "hf"}
    )
    engine = CachedEngine(cfg, GenerationCache(cache_path))
    engine._backend = RayBackend(cfg, **backend_kwargs)
    return engine


def _kill_after_first_commit(engine: CachedEngine, pid: int) -> None:
    """SIGKILL a replica's process as soon as the driver has committed its first chunk (mid-run)."""
    deadline = time.monotonic() + 300
    while engine.cache.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def test_greedy_matches_single_process_and_cache_is_shared(ray_cluster, single_process_outputs, tmp_path):
    cfg = EngineConfig(
        model="smollm2-135m", engine="ray", batch_size=2, replicas=2, ray_address=ray_cluster, inner={"engine": "hf"}
    )
    engine = CachedEngine(cfg, GenerationCache(tmp_path / "gen.sqlite"))  # backend made by make_backend
    try:
        outs = engine.generate(PROMPTS, GREEDY)
        info = engine.backend.replica_info
        assert len({i["pid"] for i in info}) == 2 and os.getpid() not in {i["pid"] for i in info}
        assert [[c.text for c in row] for row in outs] == single_process_outputs
        assert all(row[0].completion_tokens > 0 for row in outs)
        assert engine.stats.generated == len(PROMPTS)
        assert engine.backend.chunks_done == [2, 2]  # 4 chunks of 2 prompts, spread over both replicas
        # the cache lives in the driver: a second pass is served from it, no replica involved
        again = engine.generate(PROMPTS, GREEDY)
        assert all(c.cached for row in again for c in row)
        assert [[c.text for c in row] for row in again] == single_process_outputs
        assert engine.stats.cache_hits == len(PROMPTS)
    finally:
        engine.close()
    # the same cache file serves the single-process hf engine too (the key does not include the engine)
    hf = CachedEngine(EngineConfig(model="smollm2-135m", engine="hf"), GenerationCache(tmp_path / "gen.sqlite"))
    assert all(c.cached for row in hf.generate(PROMPTS, GREEDY) for c in row)
    assert hf._backend is None  # never loaded


def test_killed_replica_work_is_retried_elsewhere(ray_cluster, single_process_outputs, tmp_path):
    # max_restarts=0: the killed replica stays dead, so everything it held must run on the other one
    engine = _ray_engine(ray_cluster, tmp_path / "gen.sqlite", max_restarts=0)
    backend = engine.backend
    victim_pid = backend.replica_pids()[0]
    sampling = GREEDY
    prompts = PROMPTS + [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(8)]
    killer = threading.Thread(target=_kill_after_first_commit, args=(engine, victim_pid), daemon=True)
    killer.start()
    try:
        outs = engine.generate(prompts, sampling)
    finally:
        killer.join(timeout=60)
        engine.close()
    assert backend.dead_replicas == [0]
    assert backend.retried_chunks >= 1  # the victim always holds queued chunks until the last ones
    # nothing lost: every prompt has its completion, identical to the single-process reference
    assert [[c.text for c in row] for row in outs[: len(PROMPTS)]] == single_process_outputs
    assert all(len(row) == 1 and row[0].finish_reason in ("stop", "length") for row in outs)
    # nothing duplicated: exactly one cache row per request key
    keys = [r.key for row in engine.requests(prompts, sampling, 1) for r in row]
    assert engine.cache.count() == len(set(keys)) == len(prompts)
    assert set(engine.cache.get_many(keys)) == set(keys)
    assert engine.stats.generated == len(prompts)


def test_restarted_replica_rejoins(ray_cluster, tmp_path):
    # max_restarts=1: Ray restarts the killed actor in a new process; it answers a ping and takes work again
    engine = _ray_engine(ray_cluster, tmp_path / "gen.sqlite", max_restarts=1)
    backend = engine.backend
    old_pid = backend.replica_pids()[1]
    first = [[{"role": "user", "content": f"Count to {i}."}] for i in range(1, 9)]
    second = [[{"role": "user", "content": f"Spell the number {i}."}] for i in range(1, 9)]
    sampling = SamplingParams(max_tokens=6)
    killer = threading.Thread(target=_kill_after_first_commit, args=(engine, old_pid), daemon=True)
    killer.start()
    try:
        outs = engine.generate(first, sampling)
        killer.join(timeout=60)
        assert backend.retried_chunks >= 1
        new_pid = backend.refresh_info()[1]["pid"]  # waits until the restarted actor answers
        done_before = list(backend.chunks_done)
        outs += engine.generate(second, sampling)
    finally:
        engine.close()
    assert all(len(row) == 1 and row[0].completion_tokens > 0 for row in outs)
    assert engine.cache.count() == len(first) + len(second)
    assert backend.dead_replicas == []
    assert new_pid != old_pid  # the restarted actor runs in a new process ...
    assert backend.chunks_done[1] > done_before[1]  # ... and took chunks again


def test_startup_errors_are_clear(ray_cluster, tmp_path):
    from limo.engines.ray import RayBackend

    too_many = EngineConfig(model="smollm2-135m", engine="ray", replicas=3, ray_address=ray_cluster)
    with pytest.raises(LimoError, match="3 replicas need 3 CPU in total but the cluster has 2"):
        RayBackend(too_many)
    missing = tmp_path / "no-such-model"
    broken = EngineConfig(model=str(missing), engine="ray", replicas=1, ray_address=ray_cluster)
    with pytest.raises(LimoError, match="hf replica failed to start"):
        RayBackend(broken)


def test_inner_config_errors_are_clear(tmp_path):
    from limo.engines.ray import inner_config, split_by_prompt

    cfg = EngineConfig(model="smollm2-135m", engine="ray", inner={"engine": "hf", "modle": "x"})
    with pytest.raises(LimoError, match="unknown field.*modle"):
        inner_config(cfg)
    with pytest.raises(LimoError, match="names the generations in the cache"):
        inner_config(EngineConfig(model="smollm2-135m", engine="ray", inner={"model": "other"}))
    with pytest.raises(LimoError, match="cannot be 'ray'"):
        inner_config(EngineConfig(engine="ray", inner={"engine": "ray"}))
    inner = inner_config(EngineConfig(model="m", engine="ray", batch_size=3, inner={"engine": "vllm"}))
    assert (inner.engine, inner.model, inner.batch_size) == ("vllm", "m", 3)
    # chunks keep the samples of one prompt together
    engine = CachedEngine(EngineConfig(model="m"), GenerationCache(tmp_path / "gen.sqlite"))
    reqs = [r for row in engine.requests(["a", "b", "c"], GREEDY, 3) for r in row]
    chunks = split_by_prompt(reqs, 4)
    assert [c.positions for c in chunks] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert [c.positions for c in split_by_prompt(reqs[:3], 2)] == [[0, 1], [2]]


def test_a_replica_no_node_can_host_fails_at_once_with_what_it_asked_for(ray_cluster):
    from limo.engines.ray import RayBackend, fits_on_a_node, replica_bundles

    greedy = EngineConfig(model="smollm2-135m", engine="ray", ray_cpus_per_replica=3, ray_address=ray_cluster)
    with pytest.raises(LimoError, match="1 replicas need 3 CPU in total but the cluster has 2"):
        RayBackend(greedy)
    # a tensor-parallel replica is one group packed on one node: two 4-GPU nodes cannot host a tp=8 replica
    bundles = replica_bundles(1, 8)
    assert len(bundles) == 8 and all(b["GPU"] == 1 for b in bundles) and bundles[0]["CPU"] == 1
    nodes = [{"CPU": 16, "GPU": 4}, {"CPU": 16, "GPU": 4}]
    assert not fits_on_a_node(bundles, nodes)
    assert fits_on_a_node(replica_bundles(1, 4), nodes)


def test_a_replica_the_cluster_cannot_place_in_time_fails_with_a_clear_message(ray_cluster):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    from limo.engines.ray import RayBackend

    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        blocker = placement_group([{"CPU": 2}])  # another job reserves both CPUs
        ray.get(blocker.ready(), timeout=120)
        cfg = EngineConfig(model="smollm2-135m", engine="ray", ray_address=ray_cluster, ray_ready_timeout_s=5)
        expected = r"1 hf replicas \(each \{CPU: 1, GPU: 0\}\) were not ready after 5s \(ray_ready_timeout_s\)"
        with pytest.raises(LimoError, match=expected):
            RayBackend(cfg)
        remove_placement_group(blocker)
    finally:
        ray.shutdown()


def test_a_prompt_whose_task_raises_is_counted_failed_and_the_others_are_done(ray_cluster, tmp_path):
    engine = _ray_engine(ray_cluster, tmp_path / "gen.sqlite")
    backend = engine.backend
    bad = [{"role": "user"}]  # no content: the replica's chat template raises on it
    prompts = PROMPTS[:3] + [bad] + PROMPTS[3:6]
    try:
        outs = engine.generate(prompts, GREEDY)
    finally:
        engine.close()
    failed = outs[3][0]
    assert failed.finish_reason == "error" and failed.error.startswith("ray_task_error: UndefinedError")
    good = [row[0] for i, row in enumerate(outs) if i != 3]
    assert all(c.finish_reason in ("stop", "length") and c.completion_tokens > 0 for c in good)
    assert engine.stats.errors == {"ray_task_error": 1} and engine.stats.generated == 6
    assert backend.failed_requests == 1
    assert engine.cache.count() == 6  # the failed one is not cached: a rerun tries it again
    assert good[0].producer["engine"] == "hf" and "ray" in good[0].producer
