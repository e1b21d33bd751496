# The Dask executor: a LocalCluster run equals the serial run byte for byte, also when a worker
# process is SIGKILLed mid-run; tasks carry explicit keys; the task list is the serial one.
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faceattr.experiments.executor import (
    DaskExecutor,
    SerialExecutor,
    protocol_on_device,
    record_tasks,
)
from faceattr.experiments.run import run_protocol
from faceattr.protocol import Protocol, load_protocol
from tests.helpers import pair, small_protocol

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

ARTEFACTS = ("records.jsonl", "summary.json", "manifest.json")
TEXT = small_protocol(n_pairs=8, pairs_per_batch=2)


def _protocol(tmp_path: Path) -> Protocol:
    path = tmp_path / "small.toml"
    path.write_text(TEXT, encoding="utf-8")
    return load_protocol(path)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # two single-threaded worker processes, as on the 2-core CI machine
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("serial")
    return run_protocol(_protocol(tmp), tmp / "reports", progress=False,
                        executor=SerialExecutor()).root


def _same_bytes(a: Path, b: Path) -> None:
    assert a.name == b.name  # one identity: the executor is not part of it
    for name in ARTEFACTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
def test_a_local_cluster_run_is_byte_identical_to_the_serial_run(
        tmp_path: Path, client: Any, serial_run: Path) -> None:
    folder = run_protocol(_protocol(tmp_path), tmp_path / "reports", progress=False,
                          executor=DaskExecutor(client=client))
    _same_bytes(folder.root, serial_run)
    import json

    timing = json.loads(folder.timing.read_text())
    assert (timing["executor"], timing["n_workers"]) == ("dask", 2)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_and_the_bytes_do_not_change(
        tmp_path: Path, client: Any, serial_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceattr.experiments import run as run_module

    before = client.run(os.getpid)  # worker address -> pid
    killed: dict[str, Any] = {}
    original = run_module._RecordsLog.append

    def kill_a_busy_worker_after_the_first_batch(self: Any, records: Any) -> None:
        if not killed:
            busy = {a: keys for a, keys in client.processing().items() if keys}
            assert busy, "no task in flight when the first batch was written"
            address = sorted(busy)[0]
            os.kill(before[address], signal.SIGKILL)
            killed.update(address=address, pid=before[address], tasks=list(busy[address]))
        original(self, records)

    monkeypatch.setattr(run_module._RecordsLog, "append",
                        kill_a_busy_worker_after_the_first_batch)
    folder = run_protocol(_protocol(tmp_path), tmp_path / "reports", progress=False,
                          executor=DaskExecutor(client=client))
    assert killed["tasks"], killed  # it died holding a task
    assert killed["pid"] not in client.run(os.getpid).values()  # the nanny started another
    _same_bytes(folder.root, serial_run)


def test_the_task_list_is_the_serial_batches_by_method_in_canonical_order() -> None:
    pairs = [pair(i) for i in range(5)]
    tasks = record_tasks(pairs, pairs_per_batch=2, method_ids=["random", "oracle"])
    assert [[(t.batch_index, t.pair_ids, t.method_id) for t in batch] for batch in tasks] == [
        [(0, ("p0000", "p0001"), "oracle"), (0, ("p0000", "p0001"), "random")],
        [(1, ("p0002", "p0003"), "oracle"), (1, ("p0002", "p0003"), "random")],
        [(2, ("p0004",), "oracle"), (2, ("p0004",), "random")]]
    keys = {t.key("ab" * 32) for batch in tasks for t in batch}
    assert len(keys) == 6  # explicit, distinct keys naming the run, method and pairs
    assert all(k.startswith("faceattr-abababababab-") for k in keys)
    other_pairs = record_tasks([pair(i) for i in range(1, 3)], pairs_per_batch=2,
                               method_ids=["oracle"])
    # a resumed run's batch 0 holds other pairs: another key, never a stale result
    assert other_pairs[0][0].key("ab" * 32) != tasks[0][0].key("ab" * 32)


def test_device_override_reaches_the_document_that_reruns_rebuild(tmp_path: Path) -> None:
    import json

    from faceattr.errors import InputError

    protocol = _protocol(tmp_path)
    assert protocol.execution.device == "cpu"
    moved = protocol_on_device(protocol, "cuda:1")
    assert moved.execution.device == "cuda:1"
    assert json.loads(moved.raw)["execution"]["device"] == "cuda:1"
    assert moved.content_sha256 == protocol.content_sha256  # the science is unchanged
    assert protocol_on_device(protocol, None) is protocol
    with pytest.raises(InputError, match=r"device 'gpu' is not one of cpu, cuda, cuda:N, mps"):
        protocol_on_device(protocol, "gpu")


def test_an_unreachable_scheduler_is_one_line() -> None:
    from faceattr.errors import InputError

    executor = DaskExecutor(scheduler="tcp://127.0.0.1:9", connect_timeout_s=2)  # discard port
    with pytest.raises(InputError, match=r"--scheduler tcp://127.0.0.1:9: cannot connect"):
        executor.client()
