"""RayBackend: how it reaches Ray (fake ray module), and what a local instance it starts exposes.

The `ray`-marked tests share one local instance, started through `RayBackend` by a driver in a
subprocess whose single task blocks: its process tree is the whole instance. One test lists the
listening TCP sockets of that tree, the other kills the driver with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from deepcollapse.sweep import backends
from deepcollapse.sweep.backends import LOCAL_RAY_ENV, RayBackend

SRC = Path(backends.__file__).resolve().parents[2]
START_TIMEOUT_S = 120  # a Ray start takes 5-10 s here; the machine is shared
GONE_TIMEOUT_S = 15  # Ray itself leaves the raylet's agents listening for about 60 s
WELL_KNOWN_PORTS = {8265, 44217, 44227, 52365, 8080}  # dashboard, autoscaler and dashboard /metrics, agent


class FakeRay:
    """Records ray.init calls; `initialized` as ray.is_initialized() answers."""

    def __init__(self, initialized=False):
        self.initialized = initialized
        self.calls = []

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.calls.append((kwargs, {k: os.environ.get(k) for k in LOCAL_RAY_ENV}))


@pytest.mark.parametrize("address", ["auto", "ray://head:10001", "10.0.0.5:6379"])
def test_cluster_address_is_used_as_given(address, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for k in LOCAL_RAY_ENV:
        monkeypatch.delenv(k, raising=False)
    fake = FakeRay()
    backend = RayBackend(address=address)
    assert backend._connect(fake) is True
    assert fake.calls == [({"address": address}, dict.fromkeys(LOCAL_RAY_ENV))]  # nothing else asked or set
    assert backend._reaper is None


def test_ray_address_env_is_used_as_given(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    fake = FakeRay()
    assert RayBackend()._connect(fake) is True
    assert [kw for kw, _ in fake.calls] == [{"address": None}]  # ray.init reads RAY_ADDRESS itself


def test_connected_instance_is_left_alone():
    fake = FakeRay(initialized=True)
    assert RayBackend()._connect(fake) is False and fake.calls == []


def test_local_start_options_and_env_restored(monkeypatch):
    """The local start asks Ray for loopback, no dashboard, no metrics; the driver's env comes back."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("AUTOSCALER_METRIC_PORT", "1234")
    monkeypatch.delenv("DASHBOARD_METRIC_PORT", raising=False)
    fake = FakeRay()
    fake.util = types.SimpleNamespace(get_node_ip_address=lambda: "127.0.0.1")
    fake.shutdown = lambda: None
    monkeypatch.setattr(backends, "_import_psutil", lambda: None)  # no reaper: nothing is started
    assert RayBackend(local_cpus=3)._connect(fake) is True
    (kwargs, env), = fake.calls
    assert kwargs == {"address": "local", "num_cpus": 3, "include_dashboard": False,
                      "_node_ip_address": "127.0.0.1", "_system_config": {"enable_metrics_collection": False}}
    assert env == LOCAL_RAY_ENV
    assert os.environ["AUTOSCALER_METRIC_PORT"] == "1234" and "DASHBOARD_METRIC_PORT" not in os.environ


def test_local_start_refuses_a_non_loopback_node(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = FakeRay()
    fake.__version__ = "x"
    fake.util = types.SimpleNamespace(get_node_ip_address=lambda: "192.0.2.7")
    shut = []
    fake.shutdown = lambda: shut.append(1)
    with pytest.raises(RuntimeError, match="192.0.2.7"):
        RayBackend()._connect(fake)
    assert shut == [1]


REAPED_DRIVER = textwrap.dedent("""
    import subprocess, sys, time
    from pathlib import Path
    import psutil
    # a process with a child that is not tied to it, like the raylet and its agents
    root = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); time.sleep(300)"])
    reaper = subprocess.Popen([sys.executable, sys.argv[1], str(Path(psutil.__file__).parent.parent), str(root.pid)],
                              stdin=subprocess.PIPE, start_new_session=True)
    while not psutil.Process(root.pid).children():
        time.sleep(0.1)
    time.sleep(2.5)  # the reaper has recorded the child
    print(reaper.pid, root.pid, *(p.pid for p in psutil.Process(root.pid).children()), flush=True)
    time.sleep(300)
""")


def test_reaper_ends_the_tree_when_its_driver_is_killed():
    """No Ray: a driver starts a process with a child, and the reaper; SIGKILL of the driver ends all three."""
    psutil = pytest.importorskip("psutil")
    reaper_py = Path(backends.__file__).with_name("_ray_reaper.py")
    drv = subprocess.Popen([sys.executable, "-c", REAPED_DRIVER, str(reaper_py)], stdout=subprocess.PIPE, text=True)
    procs = []
    try:
        procs = [psutil.Process(int(x)) for x in drv.stdout.readline().split()]
        assert len(procs) == 3
        drv.kill()
        drv.wait(timeout=10)
        _, alive = psutil.wait_procs(procs, timeout=GONE_TIMEOUT_S)
        assert not alive, alive
    finally:
        drv.kill()
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass


# ---------------------------------------------------------------- a real local Ray instance

BLOCKED_DRIVER = textwrap.dedent("""
    import os, sys, time
    from deepcollapse.sweep.backends import RayBackend

    def worker(task, attempt):
        with open(task + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(task + ".tmp", task)
        time.sleep(600)

    RayBackend(local_cpus=1).run([sys.argv[1]], worker)
""")


def _http_answer(port: int, path: str) -> bytes:
    """The first bytes a server on 127.0.0.1:port answers to an HTTP/1.0 GET (gRPC ports answer no HTTP)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            return s.recv(64)
    except OSError:
        return b""


@pytest.fixture(scope="module")
def blocked_instance(tmp_path_factory):
    """A driver blocked in RayBackend.run on a local instance: (driver Popen, its process tree, the
    listening TCP sockets of that tree as (ip, port, pid, name)), all read while the task runs."""
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    tmp = tmp_path_factory.mktemp("ray")
    ready, log = tmp / "ready", tmp / "driver.log"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])  # workers too
    with open(log, "wb") as out:
        drv = subprocess.Popen([sys.executable, "-c", BLOCKED_DRIVER, str(ready)], env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    procs = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if drv.poll() is not None:
                pytest.fail(f"the driver exited ({drv.returncode}): {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no task started within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        time.sleep(1.0)  # the agents are up before a task runs; give late listeners a moment anyway
        root = psutil.Process(drv.pid)
        procs = [root, *root.children(recursive=True)]
        pids = {p.pid: p for p in procs}
        listening = []
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.pid in pids:
                listening.append((c.laddr.ip, c.laddr.port, c.pid, pids[c.pid].name()))
        yield drv, procs, sorted(listening)
    finally:
        drv.kill()
        drv.wait(timeout=30)
        for p in procs:  # nothing may outlive the module, whatever failed
            try:
                p.kill()
            except psutil.Error:
                pass


@pytest.mark.ray
def test_local_instance_listens_on_loopback_only(blocked_instance):
    _, procs, listening = blocked_instance
    names = {p.name() for p in procs}
    assert {"gcs_server", "raylet"} <= names, names  # the tree is the instance
    assert {pid for _, _, pid, _ in listening} >= {p.pid for p in procs if p.name() in ("gcs_server", "raylet")}
    for ip, port, pid, name in listening:
        ip = ip.removeprefix("::ffff:")  # an IPv4-mapped listener on a dual-stack socket
        assert ip in ("127.0.0.1", "::1"), f"{name} (pid {pid}) listens on {ip}:{port}"
        assert port not in WELL_KNOWN_PORTS, f"{name} (pid {pid}) listens on the well-known port {port}"
        for path in ("/metrics", "/"):  # no dashboard or metrics page: gRPC, or HTTP that wants the token
            answer = _http_answer(port, path)
            assert not answer.startswith((b"HTTP/1.0 2", b"HTTP/1.1 2")), f"{name}:{port}{path} -> {answer!r}"


@pytest.mark.ray
def test_local_instance_ends_with_a_killed_driver(blocked_instance):
    psutil = pytest.importorskip("psutil")
    drv, procs, listening = blocked_instance
    assert len(procs) >= 5 and listening
    drv.send_signal(signal.SIGKILL)
    drv.wait(timeout=30)
    _, alive = psutil.wait_procs(procs, timeout=GONE_TIMEOUT_S)
    assert not alive, [(p.pid, p.name()) for p in alive]
    ports = {port for _, port, _, _ in listening}
    still = [c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
             and c.laddr.port in ports and c.pid in {p.pid for p in procs}]
    assert not still
