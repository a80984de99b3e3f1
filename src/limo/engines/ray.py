"""The `ray` engine: N replicas of an inner engine (hf or vllm) as Ray actors, behind the usual interface.

The generation cache stays in the driver. `CachedEngine` looks up the cache and hands the misses to
`RayBackend.generate_stream`, which splits them by prompt into chunks of the inner backend's batch size, keeps every
replica busy (a few chunks queued per replica), and yields each chunk as soon as it finishes, so the driver commits
it to the cache at once. Results are put back in request order by the driver.

Fault tolerance: when a replica dies mid-run (its process is killed, its node goes away), every chunk it held is
put back at the front of the queue and runs on the other replicas. With `max_restarts > 0` Ray restarts the actor
(reloading the model); it rejoins the pool once it answers a ping. A chunk is yielded exactly once, and the cache's
`INSERT OR IGNORE` keeps one entry per key whatever happens.

Where the cluster is:
- `ray_address: null`  -> connect to the cluster in $RAY_ADDRESS if set, else start a local one in this process;
- `ray_address: auto`  -> the cluster started on this machine with `ray start --head`;
- `ray_address: HOST:6379` or `ray://HOST:10001` -> an existing cluster.

Recipe / config (the top-level `model` names the cache entries and is inherited by the replicas; `inner` holds
the EngineConfig fields of the engine each replica runs):

    engine: {engine: ray, model: Qwen/Qwen2.5-32B-Instruct, replicas: 4, ray_address: auto,
             inner: {engine: vllm, tensor_parallel_size: 2, max_model_len: 32768}}

    limo generate --engine ray --inner-engine hf --replicas 2 --input prompts.jsonl --out out.jsonl

Resources: each replica asks Ray for `ray_cpus_per_replica` CPUs and, for hf on cuda (or on `auto` when the cluster
has GPUs), one GPU. A vllm replica with `tensor_parallel_size: k > 1` gets a placement group of k one-GPU bundles
packed on one node (STRICT_PACK; the first bundle also holds the replica's CPUs); the actor runs in the first bundle
and captures the group, so vllm's Ray executor places its k workers in it (vllm/v1/executor/ray_utils.py,
`initialize_ray_cluster` uses the current placement group). A replica that no node can host is refused at once;
one that the cluster could host but doesn't within `ray_ready_timeout_s` (resources held by other jobs, a model that
takes too long to load) fails with a message naming what it asked for.

Task errors: a chunk whose call raises (a bad prompt, an exception in the engine) is split in halves and retried,
so one bad prompt cannot sink its neighbours; a single request that fails `ray_max_attempts` times comes back as an
error completion (`ray_task_error`), counted in the engine stats, never cached, and the run goes on.
See docs/SCALE_OUT.md.
"""

import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

from limo.engines.base import Completion, EngineConfig, Request, dropped
from limo.errors import LimoError

RAY_FIELDS = ("inner", "replicas", "ray_address", "ray_cpus_per_replica", "ray_ready_timeout_s", "ray_max_attempts")
PING_TRIES, PING_PAUSE_S = 120, 0.5  # how long a restarting replica may stay unreachable: about a minute
# environment the replicas need to find the same data, caches and converted models as the driver
PASSED_ENV = ("LIMO_DATA", "LIMO_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def inner_config(cfg: EngineConfig) -> EngineConfig:
    """The EngineConfig each replica runs: the outer fields (model, batch_size, device, ...) overridden by `inner`."""
    known = {f.name for f in fields(EngineConfig)}
    unknown = sorted(set(cfg.inner) - known)
    if unknown:
        raise LimoError(f"engine.inner: unknown field(s) {unknown}; inner takes EngineConfig fields")
    model = cfg.inner.get("model", cfg.model)
    if model != cfg.model and cfg.cache_id is None:
        raise LimoError(
            f"engine.inner.model ({model!r}) differs from engine.model ({cfg.model!r}); engine.model names the "
            "generations in the cache, so set it at the top level (the replicas inherit it)"
        )
    base = {k: v for k, v in asdict(cfg).items() if k not in RAY_FIELDS}
    merged = {**base, "engine": "hf", **cfg.inner}
    if merged["engine"] == "ray":
        raise LimoError("engine.inner.engine cannot be 'ray'; choose hf or vllm")
    return EngineConfig(**merged)


@dataclass
class Chunk:
    """A slice of the work: positions in the request list, sent to one replica at a time."""

    positions: list[int]
    attempts: int = 0


@dataclass
class Ping:
    """A liveness check sent to a replica after one of its chunks failed."""

    tries: int = 1


def split_by_prompt(requests: list[Request], size: int) -> list[Chunk]:
    """Chunks of at most `size` requests; the samples of one prompt stay together (a prompt with more samples
    than `size` fills whole chunks of its own), so a replica sees each prompt once (prefix caching in vllm)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(repr(r.prompt), []).append(i)
    chunks: list[Chunk] = []
    current: list[int] = []
    for positions in groups.values():
        if current and len(current) + len(positions) > size:
            chunks.append(Chunk(current))
            current = []
        while len(positions) > size:
            chunks.append(Chunk(positions[:size]))
            positions = positions[size:]
        current.extend(positions)
    if current:
        chunks.append(Chunk(current))
    return chunks


class _Replica:
    """One Ray actor: the inner backend, loaded once in the actor's process."""

    def __init__(self, inner: dict, torch_threads: int | None):
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        from limo.engines.base import make_backend

        self.backend = make_backend(EngineConfig(**inner))

    def info(self) -> dict:
        import socket

        producer = dict(getattr(self.backend, "producer", None) or {})
        return {"pid": os.getpid(), "host": socket.gethostname(), "batch_size": self.backend.batch_size,
                "producer": producer}  # fmt: skip

    def generate(self, requests: list[Request]) -> list[Completion]:
        return self.backend.generate_batch(requests)


def _gpus_per_replica(inner: EngineConfig, cluster_gpus: float) -> int:
    if inner.engine == "vllm":
        return inner.tensor_parallel_size
    if inner.engine == "hf" and (inner.device.startswith("cuda") or (inner.device == "auto" and cluster_gpus >= 1)):
        return 1
    return 0


def replica_bundles(cpus: float, gpus: int) -> list[dict[str, float]]:
    """The placement-group bundles of one replica: one bundle per GPU (vllm's Ray executor wants at most one GPU
    per bundle), the replica's CPUs in the first; a single bundle when it needs at most one GPU."""
    if gpus <= 1:
        return [{"CPU": cpus, **({"GPU": 1} if gpus else {})}]
    return [{"CPU": cpus, "GPU": 1}] + [{"GPU": 1} for _ in range(gpus - 1)]


def fits_on_a_node(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> bool:
    """Whether some node has the summed resources of all bundles (the group is packed on one node)."""
    need: dict[str, float] = {}
    for bundle in bundles:
        for name, amount in bundle.items():
            need[name] = need.get(name, 0) + amount
    return any(all(node.get(name, 0) >= amount for name, amount in need.items()) for node in nodes)


def task_failure(error: Exception) -> Completion:
    """The completion of a request whose task kept raising: an error, counted, never cached."""
    cause = getattr(error, "cause", None) or error
    return dropped(f"ray_task_error: {type(cause).__name__}: {' '.join(str(cause).split())[:200]}")


class RayBackend:
    """`replicas` copies of the inner engine on a Ray cluster; see the module docstring."""

    def __init__(
        self,
        cfg: EngineConfig,
        *,
        torch_threads: int | None = None,
        max_restarts: int = 1,
        queue_per_replica: int = 2,
    ):
        import ray

        self.cfg = cfg
        self.inner = inner_config(cfg)
        self.queue_per_replica = queue_per_replica
        self.max_attempts = cfg.ray_max_attempts
        self.retried_chunks = 0
        self.failed_requests = 0  # requests given up after ray_max_attempts task errors
        self.placement_groups: list = []
        self.dead_replicas: list[int] = []
        self.chunks_done = [0] * cfg.replicas  # per replica: how the work was spread

        self._started_ray = False
        if not ray.is_initialized():
            env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
            local = cfg.ray_address is None and "RAY_ADDRESS" not in os.environ
            try:
                ray.init(
                    # "local" always starts a new instance (None would try the last cluster started here)
                    address="local" if local else cfg.ray_address,
                    runtime_env={"env_vars": env} if env else None,
                    log_to_driver=False,
                    **({"include_dashboard": False} if local else {}),
                )
            except ConnectionError as e:
                hint = ""
                if cfg.ray_address not in (None, "auto") and "RAY_AUTH_MODE" not in os.environ:
                    hint = (
                        "; if the cluster uses token authentication (the default of `ray start`), set "
                        "RAY_AUTH_MODE=token and provide its token (~/.ray/auth_token or RAY_AUTH_TOKEN)"
                    )
                raise LimoError(f"cannot reach the Ray cluster at {cfg.ray_address!r}: {e}{hint}") from e
            self._started_ray = True

        self.replicas: list = []
        try:
            self._start_replicas(cfg.ray_cpus_per_replica, torch_threads, max_restarts)
        except BaseException:
            self.close()  # never leave actors (or a Ray instance we started) behind
            raise
        # a chunk = one call of the inner backend (the vllm backend raises its batch size to keep the GPU full)
        self.chunk_size = self.replica_info[0]["batch_size"]
        # only used when a caller runs batches one at a time (generate_batch): enough for every replica's queue
        self.batch_size = self.chunk_size * cfg.replicas * queue_per_replica
        self.producer = {**self.replica_info[0].get("producer", {}), "ray": ray.__version__, "replicas": cfg.replicas}

    def _start_replicas(self, cpus_per_replica: float, torch_threads: int | None, max_restarts: int) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayError
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        gpus = _gpus_per_replica(self.inner, ray.cluster_resources().get("GPU", 0))
        bundles = replica_bundles(cpus_per_replica, gpus)
        self._check_resources(ray.cluster_resources(), cpus_per_replica, gpus)
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        if not fits_on_a_node(bundles, nodes):
            raise LimoError(
                f"ray engine: a replica needs {_describe(bundles)} on one node, but no node has that "
                f"(nodes: {'; '.join(_describe([n]) for n in nodes)}); lower the per-replica resources "
                "(tensor_parallel_size, ray_cpus_per_replica) or add a bigger node (`ray status` shows them)"
            )
        # torch threads default to the CPUs the replica asked for (Ray sets OMP_NUM_THREADS the same way)
        threads = torch_threads if torch_threads is not None else max(1, int(cpus_per_replica))
        timeout = self.cfg.ray_ready_timeout_s
        for _ in range(self.cfg.replicas):
            options: dict = {"num_cpus": cpus_per_replica, "max_restarts": max_restarts, "max_task_retries": 0}
            if gpus > 1:  # tensor parallel: vllm's workers take the GPU bundles of the group the actor captures
                group = placement_group(bundles, strategy="STRICT_PACK")
                self.placement_groups.append(group)
                options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
                )
                options["num_gpus"] = 0
            else:
                options["num_gpus"] = gpus
            self.replicas.append(ray.remote(_Replica).options(**options).remote(asdict(self.inner), threads))
        # wait for every replica to load its model; one that cannot start, or not in time, fails loudly here
        try:
            self.replica_info = ray.get([r.info.remote() for r in self.replicas], timeout=timeout)
        except GetTimeoutError as e:
            raise LimoError(
                f"ray engine: {self.cfg.replicas} {self.inner.engine} replicas (each {_describe(bundles)}) were not "
                f"ready after {timeout:g}s (ray_ready_timeout_s): the cluster has no free room for them (other jobs "
                "hold the resources) or the model loads slowly; check `ray status`, or raise the timeout"
            ) from e
        except RayError as e:
            raise LimoError(f"ray engine: a {self.inner.engine} replica failed to start: {e}") from e

    def _check_resources(self, resources: dict, cpus: float, gpus: int) -> None:
        need = {"CPU": cpus * self.cfg.replicas, "GPU": gpus * self.cfg.replicas}
        for name, amount in need.items():
            if amount > resources.get(name, 0):
                raise LimoError(
                    f"ray engine: {self.cfg.replicas} replicas need {amount:g} {name} in total but the cluster has "
                    f"{resources.get(name, 0):g}; lower engine.replicas or add nodes (`ray status` shows them)"
                )

    def replica_pids(self) -> list[int]:
        return [info["pid"] for info in self.replica_info]

    def refresh_info(self) -> list[dict]:
        """Ask every live replica for its process id and host again, waiting for restarting ones (a restarted
        actor has a new process); replicas that are gone for good join `dead_replicas`."""
        import ray
        from ray.exceptions import ActorUnavailableError, RayActorError

        for i in range(len(self.replicas)):
            for tries in range(1, PING_TRIES + 1):
                if i in self.dead_replicas:
                    break
                try:
                    self.replica_info[i] = ray.get(self.replicas[i].info.remote())
                    break
                except ActorUnavailableError:
                    if tries == PING_TRIES:
                        self.dead_replicas.append(i)
                    time.sleep(PING_PAUSE_S)
                except RayActorError:
                    self.dead_replicas.append(i)
        return self.replica_info

    def generate_stream(self, requests: list[Request]) -> Iterator[tuple[list[Request], list[Completion]]]:
        """Yield (requests of a chunk, their completions) as chunks finish, in completion order."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        pending = deque(split_by_prompt(requests, self.chunk_size))
        alive = [i for i in range(len(self.replicas)) if i not in self.dead_replicas]
        ready = set(alive)  # replicas that take new chunks (not recovering from a failure)
        load = dict.fromkeys(alive, 0)
        inflight: dict = {}  # ObjectRef -> (replica index, Chunk | Ping)

        while pending or any(isinstance(job, Chunk) for _, job in inflight.values()):
            while pending:  # one chunk at a time to the least-loaded replica: the work spreads before it queues
                free = [i for i in ready if load[i] < self.queue_per_replica]
                if not free:
                    break
                i = min(free, key=lambda i: (load[i], i))
                chunk = pending.popleft()
                ref = self.replicas[i].generate.remote([requests[p] for p in chunk.positions])
                inflight[ref] = (i, chunk)
                load[i] += 1
            if not inflight:
                raise LimoError(
                    f"ray engine: all {len(self.replicas)} replicas died; {sum(len(c.positions) for c in pending)} "
                    "requests left (finished ones are in the cache; rerun to resume)"
                )
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            i, job = inflight.pop(ref)
            if isinstance(job, Chunk):
                load[i] -= 1
            try:
                result = ray.get(ref)
            except RayActorError as e:
                self._on_failure(i, job, e, pending, ready, inflight)
                continue
            except RayTaskError as e:  # the call raised inside a live replica: isolate the request(s) that raise
                if isinstance(job, Chunk):
                    failed = self._on_task_error(job, e, pending)
                    if failed is not None:
                        yield [requests[p] for p in job.positions], [failed]
                continue
            if isinstance(job, Ping):  # a recovering (restarted) replica answered: it takes work again
                self.replica_info[i] = result
                ready.add(i)
                continue
            self.chunks_done[i] += 1
            yield [requests[p] for p in job.positions], result

    def _on_failure(self, i: int, job, error: Exception, pending: deque, ready: set, inflight: dict) -> None:
        from ray.exceptions import ActorUnavailableError

        if isinstance(job, Ping):
            # unavailable = not reachable right now (restarting); died = no restarts left
            if isinstance(error, ActorUnavailableError) and job.tries < PING_TRIES:
                time.sleep(PING_PAUSE_S)
                inflight[self.replicas[i].info.remote()] = (i, Ping(job.tries + 1))
            else:
                self.dead_replicas.append(i)
            return
        job.attempts += 1
        if job.attempts >= self.max_attempts:
            raise LimoError(
                f"ray engine: a chunk of {len(job.positions)} requests lost its replica {job.attempts} times; "
                "giving up (finished requests are in the cache)"
            )
        self.retried_chunks += 1
        pending.appendleft(job)
        if i in ready:  # first failure seen from this replica: stop feeding it, ask whether it comes back
            ready.discard(i)
            inflight[self.replicas[i].info.remote()] = (i, Ping())

    def _on_task_error(self, job: Chunk, error: Exception, pending: deque) -> Completion | None:
        """Split a failing chunk in halves (both retried first); a single request is retried up to max_attempts
        times, then returned as a failed completion."""
        self.retried_chunks += 1
        if len(job.positions) > 1:
            half = len(job.positions) // 2
            pending.appendleft(Chunk(job.positions[half:], job.attempts))
            pending.appendleft(Chunk(job.positions[:half], job.attempts))
            return None
        job.attempts += 1
        if job.attempts < self.max_attempts:
            pending.appendleft(job)
            return None
        self.failed_requests += 1
        return task_failure(error)

    def generate_batch(self, requests: list[Request]) -> list[Completion]:
        """All completions for `requests`, in order (runs the chunks on every replica)."""
        out: list[Completion | None] = [None] * len(requests)
        index = {id(r): p for p, r in enumerate(requests)}
        for chunk, completions in self.generate_stream(requests):
            for r, c in zip(chunk, completions, strict=True):
                out[index[id(r)]] = c
        return out  # type: ignore[return-value]

    def close(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for r in self.replicas:
            ray.kill(r)
        self.replicas = []
        for group in self.placement_groups:
            remove_placement_group(group)
        self.placement_groups = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _describe(bundles: list[dict[str, float]]) -> str:
    """'{CPU: 2, GPU: 4}': the CPUs and GPUs of some bundles (or of one node's resources) together."""
    total = {name: sum(b.get(name, 0) for b in bundles) for name in ("CPU", "GPU")}
    return "{" + ", ".join(f"{name}: {amount:g}" for name, amount in total.items()) + "}"
