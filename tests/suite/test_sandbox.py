"""The code sandbox contains hostile samples and scores them as failures; pass@k matches real benchmark items.

Every hostile sample here is real code run through the real sandbox; each test checks both the score and that the
harm did not happen (no file appeared, no connection arrived, no process survived).
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import time
from pathlib import Path

import pytest

from growth.foundation.errors import GrowbenchError
from suite.code.metric import CodeExecutionError, estimate_pass_at_k, pass_at_k, require_code_execution
from suite.code.sandbox import SandboxLimits, layers, run_sample

FAST = SandboxLimits(timeout_s=2.0)


def run(source: str, limits: SandboxLimits = FAST):
    return run_sample(textwrap.dedent(source), limits)


def test_correct_sample_passes_and_wrong_one_fails() -> None:
    good = run("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n")
    bad = run("def add(a, b):\n    return a * b\nassert add(2, 3) == 5\n")
    assert good.status == "passed", good
    assert (bad.status, bad.reason) == ("failed", "AssertionError")


def test_exit_before_the_asserts_is_not_a_pass() -> None:
    result = run("import sys\nsys.exit(0)\nassert False\n")
    assert result.status == "failed" and "SystemExit" in result.reason


def test_syntax_error_is_a_failure_not_a_sandbox_error() -> None:
    result = run("def broken(:\n")
    assert result.status == "failed" and "SyntaxError" in result.reason


def test_infinite_loop_times_out() -> None:
    start = time.monotonic()
    result = run("while True:\n    pass\n", SandboxLimits(timeout_s=1.0))
    assert result.status == "timeout"
    assert time.monotonic() - start < 5


def test_fork_bomb_is_contained() -> None:
    start = time.monotonic()
    result = run("import os\nwhile True:\n    os.fork()\n", SandboxLimits(timeout_s=2.0, processes=8))
    assert result.status in ("failed", "timeout"), result
    assert time.monotonic() - start < 8


def test_huge_allocation_fails_with_memory_error() -> None:
    result = run("block = bytearray(64 << 30)\n")
    assert (result.status, result.reason) == ("failed", "MemoryError")


def test_file_size_limit() -> None:
    result = run(
        "open('big.bin', 'wb').write(b'x' * (4 << 20))\n", SandboxLimits(timeout_s=2.0, file_bytes=1 << 20)
    )
    assert result.status == "failed" and "File too large" in result.reason


def test_many_files_cannot_fill_the_disk() -> None:
    if not layers().namespaces:
        pytest.skip("no CAP_SYS_ADMIN: no tmpfs working dir, only the per-file size limit holds")
    source = "for i in range(64):\n    open(f'part{i}', 'wb').write(bytes(1 << 20))\n"
    result = run(source, SandboxLimits(timeout_s=3.0, disk_bytes=8 << 20))
    assert result.status == "failed" and "No space left on device" in result.reason, result


def test_writes_outside_the_temp_dir_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "open-to-all"
    outside.mkdir()
    outside.chmod(0o777)  # only the sandbox, not file permissions, stands in the way
    for target in (outside / "escaped.txt", Path("/tmp") / f"growbench-escaped-{os.getpid()}.txt"):
        result = run(f"open({str(target)!r}, 'w').write('escaped')\n")
        assert result.status == "failed" and "Permission denied" in result.reason, result
        assert not target.exists()
    removal = run(f"import os\nos.rmdir({str(outside)!r})\n")
    assert removal.status == "failed" and outside.is_dir()


def test_the_temp_dir_is_writable_and_the_environment_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWBENCH_TEST_SECRET", "do-not-leak")
    result = run(
        """
        import os
        assert "GROWBENCH_TEST_SECRET" not in os.environ
        assert os.environ["HOME"] == os.environ["TMPDIR"] == os.getcwd()
        with open("scratch.txt", "w") as fh:
            fh.write("ok")
        os.mkdir("sub")
        os.rename("scratch.txt", "sub/scratch.txt")
        assert open("sub/scratch.txt").read() == "ok"
        """
    )
    assert result.status == "passed", result


def test_socket_to_a_loopback_listener_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        result = run(
            f"""
            import socket
            with socket.create_connection(("127.0.0.1", {port}), timeout=1) as conn:
                conn.sendall(b"leak")
            """
        )
        assert result.status == "failed" and "Operation not permitted" in result.reason, result
        with pytest.raises(socket.timeout):
            listener.accept()


def test_network_namespace_hides_host_interfaces() -> None:
    if not layers().namespaces:
        pytest.skip(
            "no CAP_SYS_ADMIN: samples share the host network namespace (seccomp still blocks sockets)"
        )
    result = run(
        """
        lines = open("/proc/self/net/dev").read().splitlines()[2:]
        assert [line.split(":")[0].strip() for line in lines] == ["lo"], lines
        """
    )
    assert result.status == "passed", result


def test_sample_runs_without_root_powers() -> None:
    active = layers()
    allowed_caps = (
        (0, 1 << 2) if active.keep_read_search else (0,)
    )  # CAP_DAC_READ_SEARCH only when it had to stay
    result = run(
        f"""
        import os, resource
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2", status
        assert int(status["CapEff"], 16) in {allowed_caps!r}, status["CapEff"]
        assert ({active.own_uid!r} and os.getuid() != 0) or not {active.own_uid!r}
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (hard * 2, hard * 2))
        except (ValueError, OSError):
            pass
        else:
            raise AssertionError("raised its own hard memory limit")
        """
    )
    assert result.status == "passed", result


def test_cannot_signal_the_evaluating_process() -> None:
    result = run(f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)\n")
    assert result.status == "failed" and "Operation not permitted" in result.reason, result


def test_processes_that_leave_the_group_are_killed() -> None:
    if not layers().own_uid:
        pytest.skip("not root: leftovers are killed through the process group only")
    result = run(
        """
        import os, time
        pid = os.fork()
        if pid == 0:
            os.setsid()
            time.sleep(60)
            os._exit(0)
        raise SystemExit(f"child {pid}")
        """
    )
    pid = int(result.reason.split()[-1])
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_code_execution_needs_the_flag() -> None:
    with pytest.raises(CodeExecutionError, match="--allow-code-execution") as info:
        require_code_execution(False, "mbpp")
    assert isinstance(info.value, GrowbenchError) and "\n" not in str(info.value)
    require_code_execution(True, "mbpp")


def test_pass_at_k_estimator() -> None:
    assert estimate_pass_at_k(2, 1, 1) == pytest.approx(0.5)
    assert estimate_pass_at_k(10, 3, 5) == pytest.approx(1 - (7 * 6 * 5 * 4 * 3) / (10 * 9 * 8 * 7 * 6))
    assert estimate_pass_at_k(5, 0, 1) == 0.0 and estimate_pass_at_k(5, 5, 3) == 1.0


def _first_lines(path: Path, count: int) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(count)]


def test_pass_at_1_on_real_mbpp_and_humaneval_items(benchmark_mirror: Path) -> None:
    mbpp = _first_lines(benchmark_mirror / "mbpp/full/test.jsonl", 2)
    humaneval = _first_lines(benchmark_mirror / "humaneval/default/test.jsonl", 2)
    references = ["\n".join(doc["test_list"]) for doc in mbpp]
    references += [f"{doc['test']}\ncheck({doc['entry_point']})" for doc in humaneval]
    canonical = [doc["code"] for doc in mbpp] + [
        doc["prompt"] + doc["canonical_solution"] for doc in humaneval
    ]
    wrong = ["def unrelated():\n    return None\n"] * len(mbpp) + [
        doc["prompt"] + "    return None\n" for doc in humaneval
    ]

    scores, results = pass_at_k(references, [[good] for good in canonical], k=[1])
    assert scores == {"pass@1": 1.0}, results
    scores, _ = pass_at_k(references, [[bad] for bad in wrong], k=[1])
    assert scores == {"pass@1": 0.0}
    scores, results = pass_at_k(references, [[good, bad] for good, bad in zip(canonical, wrong)], k=[1, 2, 3])
    assert scores == {"pass@1": pytest.approx(0.5), "pass@2": pytest.approx(1.0)}
    assert [[r.status for r in per_task] for per_task in results] == [["passed", "failed"]] * 4
