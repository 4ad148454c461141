"""The code sandbox scores ordinary samples right: pass, fail, syntax errors, exits before the asserts, the standard
library, a writable scrubbed working dir; pass@k matches real MBPP and HumanEval items.

Hostile samples are in test_hostile_samples.py; which layers run and when they refuse, in test_sandbox_layers.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from growth.foundation.errors import GrowbenchError
from suite.sandbox.pass_at_k import CodeExecutionError, estimate_pass_at_k, pass_at_k, require_code_execution
from suite.sandbox.sample import SandboxLimits, layers, run_sample

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


def test_the_standard_library_works_inside() -> None:
    """The read rules, the minimal root and the seccomp allowlist let the interpreter do what benchmark solutions do:
    load C extensions and their libraries, threads, fork and wait, pipes, select, sleeping, timers, temp files."""
    result = run(
        """
        import bisect, collections, ctypes, datetime, decimal, fractions, functools, hashlib, heapq, itertools
        import json, math, operator, random, re, statistics, string, sys, threading, zlib
        import os, select, shutil, signal, tempfile, time
        assert hashlib.sha256(b"x").hexdigest().startswith("2d71")
        assert math.comb(5, 2) == 10 and zlib.decompress(zlib.compress(b"ab")) == b"ab"
        assert decimal.Decimal("0.1") + decimal.Decimal("0.2") == decimal.Decimal("0.3")
        assert ctypes.sizeof(ctypes.c_int) == 4 and re.findall(r"\\d+", "a1b22") == ["1", "22"]
        results = []
        threads = [threading.Thread(target=results.append, args=(i,)) for i in range(4)]
        [thread.start() for thread in threads] and [thread.join() for thread in threads]
        assert sorted(results) == [0, 1, 2, 3]
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.write(write_end, b"from the child")
            os._exit(3)
        assert select.select([read_end], [], [], 5)[0] and os.read(read_end, 64) == b"from the child"
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 3
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        signal.signal(signal.SIGALRM, lambda *_: results.append("alarm"))
        time.sleep(0.1)
        assert results[-1] == "alarm" and len(os.urandom(8)) == 8 and random.random() < 1
        with tempfile.NamedTemporaryFile("w", delete=False) as fh:
            fh.write("copied")
        shutil.copyfile(fh.name, "copy.txt")
        assert open("copy.txt").read() == "copied" and os.cpu_count() >= 1
        """
    )
    assert result.status == "passed", result


def test_the_tests_run_after_the_sample_in_its_globals() -> None:
    result = run_sample("steps = ['sample']\ndef add(a, b):\n    return a + b\n", FAST,
                        tests="steps.append('tests')\nassert steps == ['sample', 'tests'] and add(2, 3) == 5\n")
    assert result.passed, result
    failing = run_sample("def add(a, b):\n    return a - b\n", FAST, tests="assert add(2, 3) == 5\n")
    assert (failing.status, failing.reason) == ("failed", "AssertionError"), failing
    early_exit = run_sample("raise SystemExit(0)\n", FAST, tests="assert False\n")
    assert early_exit.status == "failed" and "SystemExit" in early_exit.reason, early_exit
    # a process the sample forks and leaves running through its code does not ask for the tests or mark "ok" too
    forked = run_sample("import os\npid = os.fork()\n", FAST, tests="assert pid\nos.waitpid(pid, 0)\n")
    assert forked.passed, forked


def test_the_working_dir_is_writable_and_the_environment_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWBENCH_TEST_SECRET", "do-not-leak")
    result = run(
        """
        import os, tempfile
        assert "GROWBENCH_TEST_SECRET" not in os.environ
        assert os.environ["HOME"] == os.environ["TMPDIR"] == os.getcwd()
        with open("scratch.txt", "w") as fh:
            fh.write("ok")
        os.mkdir("sub")
        os.rename("scratch.txt", "sub/scratch.txt")
        assert open("sub/scratch.txt").read() == "ok"
        with tempfile.NamedTemporaryFile() as fh:
            fh.write(b"ok")
        """
    )
    assert result.status == "passed", result


def test_huge_allocation_fails_with_memory_error() -> None:
    result = run("block = bytearray(64 << 30)\n")
    assert (result.status, result.reason) == ("failed", "MemoryError")


def test_file_size_limit() -> None:
    result = run(
        "open('big.bin', 'wb').write(b'x' * (4 << 20))\n", SandboxLimits(timeout_s=2.0, file_bytes=1 << 20)
    )
    assert result.status == "failed" and "File too large" in result.reason, result


def test_many_files_cannot_fill_the_disk() -> None:
    if not layers().namespaces:
        pytest.skip("GROWBENCH_SANDBOX=weak without namespaces: no tmpfs working dir, only the per-file limit holds")
    source = "for i in range(64):\n    open(f'part{i}', 'wb').write(bytes(1 << 20))\n"
    result = run(source, SandboxLimits(timeout_s=3.0, disk_bytes=8 << 20))
    assert result.status == "failed" and "No space left on device" in result.reason, result


def test_extra_reads_are_granted_only_where_asked(tmp_path: Path) -> None:
    data = tmp_path / "fixture.json"
    data.write_text('{"answer": 42}')  # under pytest's 0700 dir: the sandbox exposes just this file
    source = f"import json\nassert json.load(open({str(data)!r}))['answer'] == 42\n"
    assert run(source, SandboxLimits(timeout_s=2.0, reads=(str(data),))).passed
    denied = run(source)
    # the minimal root has no such file at all; without namespaces Landlock refuses to open it
    refusal = "No such file or directory" if layers().namespaces else "Permission denied"
    assert denied.status == "failed" and refusal in denied.reason, denied


def test_code_execution_needs_the_flag() -> None:
    with pytest.raises(CodeExecutionError, match="--allow-code-execution") as info:
        require_code_execution(False, "mbpp")
    assert isinstance(info.value, GrowbenchError) and "\n" not in str(info.value)
    assert require_code_execution(True, "mbpp")["missing"] == []


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
