"""No silent weak mode: the sandbox's layers are reported at the start of a run and stored with each code benchmark's
run config; without a layer the issue relies on, code execution refuses with one line naming it, and only
GROWBENCH_SANDBOX=weak runs with fewer layers (and says so).

A missing layer is made real by running growbench without CAP_SYS_ADMIN (util-linux's setpriv drops it from the
bounding set), so no PID, mount or network namespace can be made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from growth.foundation.settings import sandbox_mode
from suite.eval.evaluate import evaluate
from suite.sandbox import cgroups
from suite.sandbox.cgroups import Hierarchies
from suite.sandbox.layers import Layers, SandboxRefused, refuse_if_weak
from suite.sandbox.sample import layers

BIN = Path(sys.executable).parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping a capability for real needs root (CI has it)")


def _without_sys_admin(command: str, **env: str) -> subprocess.CompletedProcess:
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop CAP_SYS_ADMIN"
    return subprocess.run(["setpriv", "--bounding-set=-sys_admin", "--", "sh", "-c", command], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_strict_mode_names_every_missing_layer_in_one_line() -> None:
    bare = Layers(mode="strict", own_uid=False, namespaces=False, landlock_abi=5, seccomp=True,
                  cgroups=Hierarchies(None, why_not="no writable cgroup"))
    with pytest.raises(SandboxRefused) as info:
        refuse_if_weak(bare)
    message = str(info.value)
    assert "\n" not in message and "GROWBENCH_SANDBOX=weak" in message
    for layer in ("PID namespace", "own uid", "Landlock ABI >= 6", "cgroup limits (no writable cgroup)"):
        assert layer in message, message
    weak = Layers(**{**vars(bare), "mode": "weak"})
    refuse_if_weak(weak)
    assert weak.describe().startswith("code sandbox WEAK (GROWBENCH_SANDBOX=weak), missing PID namespace")
    assert weak.as_dict()["missing"] == bare.missing() and len(bare.missing()) == 4


def test_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWBENCH_SANDBOX", "off")
    with pytest.raises(ConfigError, match="GROWBENCH_SANDBOX='off' is not one of strict, weak"):
        sandbox_mode()
    monkeypatch.setenv("GROWBENCH_SANDBOX", "weak")
    assert sandbox_mode() == "weak"
    monkeypatch.setenv(cgroups.CGROUP_ENV, "/tmp")
    with pytest.raises(ConfigError, match="is not a cgroup v2 directory"):
        cgroups.probe()


@needs_root
def test_code_execution_refuses_without_a_pid_namespace(tmp_path: Path) -> None:
    proc = _without_sys_admin(f"{BIN / 'growbench'} eval {tmp_path} -b mbpp --allow-code-execution "
                              f"--db {tmp_path / 'x.duckdb'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "lacks: PID namespace (needs CAP_SYS_ADMIN)" in proc.stderr and "GROWBENCH_SANDBOX=weak" in proc.stderr
    assert not (tmp_path / "x.duckdb").exists()


@needs_root
def test_weak_mode_runs_says_so_and_still_kills_what_the_sample_left(tmp_path: Path) -> None:
    script = tmp_path / "weak.py"
    script.write_text(textwrap.dedent(
        """
        import json, os
        from suite.sandbox.pass_at_k import pass_at_k, require_code_execution
        layers = require_code_execution(True, "mbpp")
        leaver = '''
        import os, threading, time, ctypes
        r, w = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                threading.Thread(target=time.sleep, args=(20,)).start()
                os.write(w, str(os.getpid()).encode())
                ctypes.CDLL(None).syscall(60 if os.uname().machine == "x86_64" else 93, 0)
            os._exit(0)
        raise SystemExit(os.read(r, 32).decode())
        '''
        _, [[left, good]] = pass_at_k([""], [[leaver, "assert 1 + 1 == 2"]], k=[1], workers=1)
        pid = int(left.reason.split()[-1])
        alive = [t for t in os.listdir(f"/proc/{pid}/task")] if os.path.exists(f"/proc/{pid}") else []
        print(json.dumps({"layers": layers, "good": good.status, "alive": alive}))
        """
    ))
    proc = _without_sys_admin(f"{sys.executable} {script}", GROWBENCH_SANDBOX="weak")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["layers"]["mode"] == "weak" and report["layers"]["pid_namespace"] is False
    assert report["layers"]["missing"][0].startswith("PID namespace")
    assert report["good"] == "passed" and report["alive"] == []
    assert "code sandbox WEAK (GROWBENCH_SANDBOX=weak), missing PID namespace" in proc.stderr


def test_layers_are_stored_with_the_run_config(tiny_model: Path, benchmark_mirror: Path, store,
                                               capfd: pytest.CaptureFixture) -> None:
    from suite.sandbox import sandbox

    sandbox._announce.cache_clear()
    (result,) = evaluate(tiny_model, benchmarks=["mbpp"], limit=1, backend="hf", data_dir=benchmark_mirror,
                         allow_code_execution=True, store=store)
    assert result.status == "finished" and result.n == 1, result
    assert layers().describe() in capfd.readouterr().err
    config = json.loads(store.query("SELECT config FROM eval_runs WHERE run_id = ?", [result.run_id]).iloc[0, 0])
    assert config["sandbox"] == layers().as_dict() and config["sandbox"]["missing"] == []
