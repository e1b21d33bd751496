"""Who computes a run's records: the in-process loop (default) or a Dask cluster.

The unit of work is one *task*: (a batch of ``[execution] pairs_per_batch`` pairs) x (one
method). :func:`record_tasks` lists them for the pairs a run (or a shard of it) still has to
do; both executors work through that one list and hand back each batch's records in
canonical order (pair order, then method id), which the driver appends to ``records.jsonl``
through the run's checkpointed log. So where a task ran never shows in the bytes: a cluster
run is byte-identical to a serial run on the same device (and the same torch thread count).

Serial (:class:`SerialExecutor`)
    The batches in order, in this process: each batch's clean inputs and target sanity once,
    then every method on them.
Dask (:class:`DaskExecutor`)
    ``faceattr run PROTOCOL --executor dask [--scheduler ADDRESS]``. Every task is submitted
    with an explicit key, ``faceattr-<run id>-<method>-b<batch>-<pair ids hash>``, naming its
    content (never Dask's ``pure=True`` hashing of arguments), and carries only plain data:
    the validated protocol document, the pair ids, the method id, the device and thread
    count, and the code and weights hashes the worker must match. The worker rebuilds the
    protocol, the pair source and the model from that document once per process
    (:func:`worker_context`, cached by the document's hash: never a pickled model or a CUDA
    tensor), loads and embeds the batch's images itself and returns plain
    :class:`~faceattr.records.PairRecord` s. Every draw comes from a keyed stream
    (:mod:`faceattr.rng`), and every forward has a fixed shape, so a task is a pure function
    of its arguments: a task whose worker died is simply run again by the scheduler, and the
    run still ends with the same bytes.

Without ``--scheduler`` a ``distributed.LocalCluster`` of one single-threaded worker process
per core is started for the run. Shards (``--shard i/n``, ``faceattr merge``) remain for
machines without a scheduler: a shard is the same task list over its own pairs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from typing import Protocol as TypingProtocol

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.data.pairs import Pair
from faceattr.devices import (
    DeviceOutOfMemoryError,
    apply_deterministic_settings,
    check_device_text,
    is_out_of_memory_status,
    resolve_device,
)
from faceattr.errors import InputError
from faceattr.io import dumps_strict
from faceattr.records import PairRecord

if TYPE_CHECKING:
    from faceattr.attribution import AttributionMethod
    from faceattr.attribution.target import TargetSanity
    from faceattr.data.pairs import LoadedImage, PairSource
    from faceattr.experiments.context import PreparedRun
    from faceattr.falsification import PairInputs
    from faceattr.models.base import VerificationModel
    from faceattr.protocol import Protocol

__all__ = ["DaskExecutor", "Executor", "RecordTask", "SerialExecutor", "TaskSpec",
           "check_out_of_memory", "protocol_on_device", "record_tasks", "run_task",
           "worker_context"]


@dataclass(frozen=True, slots=True)
class RecordTask:
    """One unit of work: the records of ``method_id`` on the pairs ``pair_ids``."""

    batch_index: int
    pair_ids: tuple[str, ...]
    method_id: str

    def key(self, run_sha256: str) -> str:
        """The Dask key: the run, the method, the batch and a hash of its pair ids."""
        digest = hashlib.sha256("\0".join(self.pair_ids).encode()).hexdigest()[:12]
        return f"faceattr-{run_sha256[:12]}-{self.method_id}-b{self.batch_index}-{digest}"


def record_tasks(pairs: Sequence[Pair], *, pairs_per_batch: int,
                 method_ids: Sequence[str]) -> list[list[RecordTask]]:
    """The tasks for ``pairs``, batch by batch, each batch's tasks in canonical method order."""
    if pairs_per_batch < 1:
        raise ValueError(f"pairs_per_batch must be >= 1, got {pairs_per_batch}")
    batches = []
    for index, start in enumerate(range(0, len(pairs), pairs_per_batch)):
        ids = tuple(p.pair_id for p in pairs[start:start + pairs_per_batch])
        batches.append([RecordTask(index, ids, m) for m in sorted(method_ids)])
    return batches


def protocol_on_device(protocol: Protocol, device: str | None) -> Protocol:
    """``protocol`` with ``[execution] device`` replaced by ``device`` (``--device``; None
    keeps the protocol's), in its parsed form and in the document re-runs rebuild it from."""
    if device is None or device == protocol.execution.device:
        return protocol
    check_device_text(device, "--device")
    raw = json.loads(protocol.raw)
    raw["execution"] = dict(raw["execution"], device=device)
    return replace(protocol, execution=replace(protocol.execution, device=device),
                   raw=dumps_strict(raw))


def check_out_of_memory(records: Sequence[PairRecord]) -> None:
    """Raise when a record's error came from an out-of-memory error.

    The records loop retries a failing chunk pair by pair and records what still fails, per
    pair; an out-of-memory error is not a property of the pair but of ``forward_chunk`` on
    this device, so it stops the run (as one line naming the setting: :mod:`faceattr.devices`).
    """
    for record in records:
        if is_out_of_memory_status(record.status, record.status_reason):
            raise DeviceOutOfMemoryError(f"out of memory: pair {record.pair_id}, method "
                                         f"{record.method}: {record.status_reason}")


def _interleave(by_method: Sequence[Sequence[PairRecord]]) -> list[PairRecord]:
    n_pairs = len(by_method[0])
    return [records[i] for i in range(n_pairs) for records in by_method]


class Executor(TypingProtocol):
    """Computes the records of a run's remaining pairs, one batch at a time, in order."""

    name: str

    def batches(self, prepared: PreparedRun, todo: Sequence[Pair],
                embeddings: dict[str, NDArray[np.float32]], *,
                progress: bool) -> Iterator[list[PairRecord]]:
        """Yield each batch's records in canonical order (pair, then method id)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ran the tasks (recorded in ``timing.json``)."""
        ...


def _methods(protocol: Protocol) -> list[AttributionMethod]:
    from faceattr.experiments.context import build_methods

    return build_methods(protocol)


@dataclass(frozen=True)
class _BatchInputs:
    inputs: PairInputs
    sanity: list[TargetSanity]


def _batch_inputs(protocol: Protocol, model: VerificationModel, pairs: Sequence[Pair],
                  images: dict[str, LoadedImage],
                  embeddings: dict[str, NDArray[np.float32]]) -> _BatchInputs:
    """A batch's clean inputs and the target sanity of its pairs (shared by its methods)."""
    from faceattr.experiments.context import pair_inputs, target_sanity_fixed_chunks

    inputs = pair_inputs(pairs, images, embeddings)
    return _BatchInputs(inputs, target_sanity_fixed_chunks(
        model, inputs, protocol.model.target_grad_norm_min))


def _batch_records(protocol: Protocol, model: VerificationModel, batch: _BatchInputs,
                   methods: Sequence[AttributionMethod]) -> list[list[PairRecord]]:
    """Every method's records on one batch."""
    from faceattr.experiments.context import falsification_settings
    from faceattr.experiments.method_records import method_records

    settings = falsification_settings(protocol)
    out = [method_records(m, model, batch.inputs, protocol, settings, batch.sanity)
           for m in methods]
    for records in out:
        check_out_of_memory(records)
    return out


class SerialExecutor:
    """The in-process loop: the batches in order, every method on each (the default)."""

    name = "serial"

    def batches(self, prepared: PreparedRun, todo: Sequence[Pair],
                embeddings: dict[str, NDArray[np.float32]], *,
                progress: bool) -> Iterator[list[PairRecord]]:
        """Yield each batch's records in canonical order."""
        protocol = prepared.protocol
        methods = _methods(protocol)
        tasks = record_tasks(todo, pairs_per_batch=protocol.execution.pairs_per_batch,
                             method_ids=[m.method_id for m in methods])
        by_id = {p.pair_id: p for p in todo}
        for batch in tqdm(tasks, desc=protocol.name, unit="batch", disable=not progress):
            pairs = [by_id[i] for i in batch[0].pair_ids]
            inputs = _batch_inputs(protocol, prepared.model, pairs, prepared.images, embeddings)
            yield _interleave(_batch_records(protocol, prepared.model, inputs, methods))

    def describe(self) -> dict[str, Any]:
        """``{"executor": "serial"}``."""
        return {"executor": self.name}


# --- the Dask side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What every task of one run carries besides its pair ids and method: plain data only.

    Attributes
    ----------
    raw : str
        The validated protocol document (``Protocol.raw``), device included.
    source_path : str
        Where the protocol file lives (its relative paths are taken from its folder; on a
        cluster, a path every worker sees).
    threads : int
        Torch intra-op threads (the driver's: a kernel's blocking can depend on it).
    source_sha256, weights_sha256 : str
        The driver's faceattr source tree and model weights: a worker with another checkout
        or another weights file refuses the task.
    """

    raw: str
    source_path: str
    threads: int
    source_sha256: str
    weights_sha256: str

    @property
    def sha256(self) -> str:
        """Hash of the whole spec (the worker cache key)."""
        text = "\0".join((self.raw, self.source_path, str(self.threads), self.source_sha256,
                          self.weights_sha256))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class WorkerContext:
    """What a worker process builds once per run: protocol, pairs, model, methods."""

    protocol: Protocol
    source: PairSource
    pairs: dict[str, Pair]
    model: VerificationModel
    methods: dict[str, AttributionMethod]


_WORKER_CACHE: dict[str, WorkerContext] = {}
_BATCH_CACHE: dict[tuple[str, tuple[str, ...]], _BatchInputs] = {}
_BATCH_CACHE_SIZE = 4  # batches whose inputs a worker keeps for their other methods' tasks


def worker_context(spec: TaskSpec) -> WorkerContext:
    """The run's context in this process, built on first use and cached (one run at a time).

    Raises
    ------
    faceattr.errors.InputError
        This worker's faceattr source tree or model weights differ from the driver's.
    """
    cached = _WORKER_CACHE.get(spec.sha256)
    if cached is not None:
        return cached
    from faceattr.experiments.context import build_model, build_source
    from faceattr.experiments.identity import source_tree_sha256
    from faceattr.protocol import parse_protocol

    if source_tree_sha256() != spec.source_sha256:
        raise InputError(f"worker pid {os.getpid()} runs another faceattr source tree than the "
                         "driver; install the same checkout on every worker")
    protocol = parse_protocol(json.loads(spec.raw), spec.source_path)
    torch.set_num_threads(spec.threads)
    apply_deterministic_settings(resolve_device(protocol.execution.device))
    source = build_source(protocol)
    model = build_model(protocol)
    if model.weights_sha256 != spec.weights_sha256:
        raise InputError(f"worker pid {os.getpid()}: model weights sha256 "
                         f"{model.weights_sha256[:12]} differ from the driver's "
                         f"{spec.weights_sha256[:12]}; give every worker the same weights file")
    context = WorkerContext(protocol=protocol, source=source,
                            pairs={p.pair_id: p for p in source.pairs()}, model=model,
                            methods={m.method_id: m for m in _methods(protocol)})
    _WORKER_CACHE.clear()  # one run's model per worker process
    _BATCH_CACHE.clear()
    _WORKER_CACHE[spec.sha256] = context
    return context


def run_task(spec: TaskSpec, pair_ids: tuple[str, ...], method_id: str) -> list[PairRecord]:
    """One task on a worker: ``method_id``'s records on ``pair_ids``, in pair order."""
    from faceattr.experiments.context import embed_images, load_images

    context = worker_context(spec)
    missing = [i for i in pair_ids if i not in context.pairs]
    if missing:
        raise InputError(f"worker pid {os.getpid()}: pair {missing[0]!r} is not in the "
                         "protocol's data here; give every worker the same data")
    key = (spec.sha256, pair_ids)
    batch = _BATCH_CACHE.get(key)
    if batch is None:
        pairs = [context.pairs[i] for i in pair_ids]
        images = load_images(context.source, pairs)
        embeddings = embed_images(context.model, images,
                                  context.protocol.execution.forward_chunk)
        batch = _batch_inputs(context.protocol, context.model, pairs, images, embeddings)
        while len(_BATCH_CACHE) >= _BATCH_CACHE_SIZE:
            del _BATCH_CACHE[next(iter(_BATCH_CACHE))]
        _BATCH_CACHE[key] = batch
    (records,) = _batch_records(context.protocol, context.model, batch,
                                [context.methods[method_id]])
    return records


class DaskExecutor:
    """Tasks on a Dask cluster: an existing scheduler, a given client, or a LocalCluster.

    Use as a context manager (it closes what it started)::

        with DaskExecutor(scheduler="tcp://10.0.0.1:8786") as executor:
            run_protocol(protocol, Path("reports"), executor=executor)

    Parameters
    ----------
    scheduler : str or None
        The scheduler's address; None (and no ``client``) starts a ``LocalCluster`` of
        ``n_workers`` single-threaded worker processes.
    client : distributed.Client or None
        An already connected client (tests; it is not closed here).
    n_workers : int or None
        Workers of the LocalCluster (default: one per core).
    resources : dict or None
        Dask resources every task asks for, e.g. ``{"GPU": 1}`` on GPU workers started with
        ``--resources GPU=1`` (one task per card at a time).
    connect_timeout_s : float
        How long to try to reach ``scheduler``.
    """

    name = "dask"

    def __init__(self, *, scheduler: str | None = None, client: Any = None,
                 n_workers: int | None = None, resources: dict[str, float] | None = None,
                 connect_timeout_s: float = 30.0) -> None:
        self._scheduler = scheduler
        self._client = client
        self._owned: list[Any] = []
        self._n_workers = n_workers
        self._resources = resources
        self._timeout_s = connect_timeout_s

    def __enter__(self) -> DaskExecutor:
        self.client()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self) -> Any:
        """The connected client (connecting or starting the LocalCluster on first use)."""
        if self._client is not None:
            return self._client
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError("--executor dask needs Dask: pip install 'faceattr[dask]' (or "
                             "'dask[distributed]')") from None
        if self._scheduler is None:
            cluster = LocalCluster(n_workers=self._n_workers or os.cpu_count() or 1,
                                   threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            self._owned.append(cluster)
            self._client = Client(cluster)
        else:
            try:
                self._client = Client(self._scheduler, timeout=f"{self._timeout_s}s")
            except OSError as exc:
                raise InputError(f"--scheduler {self._scheduler}: cannot connect ({exc}); "
                                 "start `dask scheduler` there or check the address") from None
        self._owned.insert(0, self._client)
        return self._client

    def close(self) -> None:
        """Close the client and cluster this executor started."""
        for thing in self._owned:
            thing.close()
        self._owned.clear()

    def describe(self) -> dict[str, Any]:
        """The executor and the scheduler it used."""
        client = self.client()
        return {"executor": self.name, "scheduler": str(client.scheduler.address),
                "n_workers": len(client.scheduler_info(n_workers=-1)["workers"])}

    def batches(self, prepared: PreparedRun, todo: Sequence[Pair],
                embeddings: dict[str, NDArray[np.float32]], *,
                progress: bool) -> Iterator[list[PairRecord]]:
        """Submit every task, then yield the batches' records in order as they complete."""
        del embeddings  # each task embeds its own batch's images (fixed chunks: same bits)
        protocol = prepared.protocol
        client = self.client()
        spec = TaskSpec(raw=protocol.raw, source_path=protocol.source_path,
                        threads=torch.get_num_threads(),
                        source_sha256=prepared.identity.source_sha256,
                        weights_sha256=prepared.model.weights_sha256)
        tasks = record_tasks(todo, pairs_per_batch=protocol.execution.pairs_per_batch,
                             method_ids=[m.method_id for m in _methods(protocol)])
        extra = {} if self._resources is None else {"resources": self._resources}
        futures = [[client.submit(run_task, spec, task.pair_ids, task.method_id,
                                  key=task.key(prepared.identity.sha256), pure=False, **extra)
                    for task in batch] for batch in tasks]
        with tqdm(total=len(futures), desc=f"{protocol.name} (dask)", unit="batch",
                  disable=not progress) as bar:
            for batch_futures in futures:
                by_method = [future.result() for future in batch_futures]
                for records in by_method:
                    check_out_of_memory(records)
                yield _interleave(by_method)
                for future in batch_futures:
                    future.release()
                bar.update(1)
