"""MultiWorkerMirroredStrategy: two worker processes on localhost train like one process on the same global batch."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import DEMO_CONFIG, REPO, seeded_trainer, tiny_overrides

WORKER = os.path.join(REPO, "tests", "training", "worker_run.py")


def free_ports(count):
    """Ports that were free a moment ago (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_worker(args, cluster, index):
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": cluster},
                                                  "task": {"type": "worker", "index": index}})}
    return subprocess.Popen([sys.executable, WORKER, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_workers_match_one_process_and_only_the_chief_writes(tmp_path, tiny_corpus):
    cluster = [f"localhost:{port}" for port in free_ports(2)]
    model_dir = str(tmp_path / "run")
    workers = [start_worker(["multi_worker", tiny_corpus, model_dir, str(tmp_path / f"worker{i}.npz")], cluster, i)
               for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    assert "chief=True replicas=2" in outputs[0][0] and "chief=False replicas=2" in outputs[1][0]
    changed = outputs[0][0].split("changed=")[1].split("/")
    assert int(changed[0]) == int(changed[1]) > 0  # every weight was trained
    single = subprocess.run([sys.executable, WORKER, "one_device", tiny_corpus, str(tmp_path / "single"),
                             str(tmp_path / "single.npz")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    weights = [np.load(tmp_path / f"{name}.npz") for name in ("worker0", "worker1", "single")]
    assert len(weights[0].files) > 0
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
        np.testing.assert_allclose(weights[0][key], weights[2][key], rtol=1e-5, atol=1e-6)
    names = sorted(os.listdir(model_dir))
    assert "ckpt-3.index" in names and os.path.isdir(os.path.join(model_dir, "export", "3"))
    assert not [n for n in names if n.startswith("worker-")]  # the other worker's files were removed


def start_training(cluster, index, corpus, model_dir, steps=100000):
    """train.py as worker `index` of a multi-worker run (output to files, read with read_output)."""
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": cluster},
                                                  "task": {"type": "worker", "index": index}})}
    log = open(os.path.join(os.path.dirname(model_dir), f"worker{index}-{os.path.basename(model_dir)}.log"), "w+")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config", DEMO_CONFIG,
           *tiny_overrides(corpus, model_dir), "train.strategy=multi_worker", "train.batch_size=4",
           f"train.max_steps={steps}", "train.save_every=100000"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True), log


def read_output(log):
    log.seek(0)
    return log.read()


def wait_for_step(log, step, timeout=300):
    """Wait until the chief's progress bar shows `step` of 100000 or more."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        counts = [int(c) for c in re.findall(r"(\d+)/100000", read_output(log))]
        if counts and max(counts) >= step:
            return max(counts)
        time.sleep(0.5)
    raise AssertionError(f"no step {step} within {timeout} s:\n{read_output(log)[-2000:]}")


@pytest.mark.slow
def test_sigterm_stops_all_workers_at_one_step_and_a_restart_resumes_there(tmp_path, tiny_corpus):
    cluster = [f"localhost:{port}" for port in free_ports(2)]
    model_dir = str(tmp_path / "run")
    workers = [start_training(cluster, i, tiny_corpus, model_dir) for i in range(2)]
    wait_for_step(workers[0][1], 5)
    for proc, _ in workers:
        proc.send_signal(signal.SIGTERM)
    for proc, log in workers:  # saved, and said so with the exit code of a stop by SIGTERM
        assert proc.wait(timeout=600) == 128 + signal.SIGTERM, read_output(log)[-2000:]
    step = int(tf.train.latest_checkpoint(model_dir).rsplit("-", 1)[1])
    assert step >= 5 and f"saved {model_dir}/ckpt-{step} at step {step}" in read_output(workers[0][1])
    assert not [n for n in os.listdir(model_dir) if n.startswith("worker-")]

    cluster = [f"localhost:{port}" for port in free_ports(2)]
    again = [start_training(cluster, i, tiny_corpus, model_dir, steps=step + 2) for i in range(2)]
    for proc, log in again:
        assert proc.wait(timeout=300) == 0, read_output(log)[-2000:]
    assert f"resumed from {model_dir}/ckpt-{step} at step {step}" in read_output(again[1][1])
    assert tf.train.latest_checkpoint(model_dir).endswith(f"ckpt-{step + 2}")


@pytest.mark.slow
def test_a_lost_worker_makes_the_chief_stop_with_a_message(tmp_path, tiny_corpus):
    cluster = [f"localhost:{port}" for port in free_ports(2)]
    model_dir = str(tmp_path / "run")
    (chief, chief_log), (worker, _) = [start_training(cluster, i, tiny_corpus, model_dir) for i in range(2)]
    try:
        wait_for_step(chief_log, 5)
        worker.kill()
        code = chief.wait(timeout=600)
    finally:
        chief.kill()
        worker.kill()
    last = read_output(chief_log).strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: step ") and "lost contact with another worker" in last, last


@pytest.mark.parametrize("value", [None, "not json", '{"cluster": {"worker": ["localhost:1"]}}',
                                   '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}'])
def test_a_missing_or_malformed_tf_config_is_a_one_line_error(tmp_path, tiny_corpus, monkeypatch, value):
    from tf_diffwave.config import load_config
    from tf_diffwave.errors import UserError

    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(UserError, match="TF_CONFIG environment variable"):
        seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, str(tmp_path / "run")) + [
            "train.strategy=multi_worker"]))
