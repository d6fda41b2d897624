"""A sandbox per function: each function runs in its own warm process, like a Lambda execution environment.

``FunctionPool`` keeps a function's sandboxes. An invocation takes an idle sandbox or starts a new one
(a cold start: a fresh process that imports the handler), sends the event, and waits at most the
function's Timeout. A sandbox that does not answer in time is stopped (SIGKILL) and thrown away, like
Lambda does; the invocation fails with Lambda's timeout error and the next one gets a fresh sandbox.

Memory: ``MemorySize`` becomes the sandbox's RLIMIT_DATA (heap and private writable mappings), with no
margin: Lambda's MemorySize covers the whole process too. RLIMIT_AS is not used: CPython's thread
stacks and malloc arenas reserve address space far beyond what they touch, so an address-space cap of
MemorySize would kill healthy functions. Where setrlimit is unavailable the cap is skipped.

Clock: ``FunctionPool.clock_offset_seconds`` travels with every invocation; a sandbox started with
``LOCAL_STACK_CLOCK_HOOK`` hands the use cases a clock that far ahead of the real one (see
``sandbox_runtime``), so tests move time past a threshold instead of sleeping through it.

Async invocations (``AsyncInvoker``) follow Lambda's event-invoke contract: up to 1 + MaximumRetryAttempts
attempts (a stopped or crashed sandbox counts as a failed attempt), then the OnFailure destination gets
Lambda's destination record. AWS waits about 1 and 2 minutes between attempts; the local stack waits
``retry_delay_seconds``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
# Lambda gives init (the import of the handler) its own 10 s, outside the function's Timeout. On a busy
# shared machine a cold import can take longer than that, so the local limit is generous.
INIT_TIMEOUT_SECONDS = 60.0


@dataclass
class Fault:
    """A fault the sandbox runtime applies to one matching invocation (see local.sandbox_runtime)."""

    kind: str  # "block" | "exit" | "raise_in_sink"
    when: str = ""  # only invocations whose event JSON contains this text
    times: int = 1
    after_bytes: int = 0


@dataclass
class Outcome:
    """One invocation as Lambda's Invoke API reports it."""

    result: Any = None
    error: dict[str, Any] | None = None  # Lambda's error payload (FunctionError: Unhandled)
    stopped: bool = False  # the sandbox was stopped: timeout or crash

    @property
    def failed(self) -> bool:
        return self.error is not None


def _memory_cap(memory_mb: int) -> Callable[[], None]:
    def apply() -> None:
        try:
            import resource

            limit = memory_mb * MiB
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        except (ImportError, ValueError, OSError):  # not every OS lets a process cap itself
            return

    return apply


class Sandbox:
    """One execution environment: a process serving one invocation at a time."""

    def __init__(
        self, name: str, environment: dict[str, str], memory_mb: int, log: Callable[[str], None]
    ) -> None:
        self.name = name
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(  # noqa: S603 - our own runtime module, no shell
            [sys.executable, "-m", "pixelbridge_local.sandbox_runtime", str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPO_ROOT,
            pass_fds=(write_fd,),
            preexec_fn=_memory_cap(memory_mb),
        )
        os.close(write_fd)
        self._results: queue.Queue[str | None] = queue.Queue()
        self._ready = False
        result_stream = os.fdopen(read_fd, "r", encoding="utf-8")
        threading.Thread(target=self._read_results, args=(result_stream,), daemon=True).start()
        threading.Thread(target=self._read_logs, args=(log,), daemon=True).start()

    def _read_results(self, stream: Any) -> None:
        with stream:
            for line in stream:
                self._results.put(line)
        self._results.put(None)

    def _read_logs(self, log: Callable[[str], None]) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            log(raw.decode("utf-8", "replace").rstrip("\n"))

    def invoke(
        self, event: Any, timeout_seconds: float, fault: dict[str, Any] | None, clock_offset: float = 0.0
    ) -> Outcome:
        request_id = str(uuid.uuid4())
        if not self._ready:
            try:
                ready = self._results.get(timeout=INIT_TIMEOUT_SECONDS)
            except queue.Empty:
                ready = None
            if ready is None:
                self.stop()
                message = f"RequestId: {request_id} Error: init did not finish"
                return Outcome(
                    error={"errorType": "Runtime.InitError", "errorMessage": message}, stopped=True
                )
            self._ready = True
        deadline_ms = int((time.time() + timeout_seconds) * 1000)
        line = json.dumps(
            {
                "requestId": request_id,
                "event": event,
                "deadlineMs": deadline_ms,
                "fault": fault,
                "clockOffsetSeconds": clock_offset,
            }
        )
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
            answer = self._results.get(timeout=timeout_seconds)
        except queue.Empty:
            self.stop()
            # Lambda's timeout report (no errorType: Step Functions names it Lambda.Unknown).
            message = f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds"
            return Outcome(error={"errorMessage": message}, stopped=True)
        except (BrokenPipeError, OSError):
            answer = None
        if answer is None:
            self.stop()
            status = self.process.returncode
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {status}"
            return Outcome(error={"errorType": "Runtime.ExitError", "errorMessage": message}, stopped=True)
        document = json.loads(answer)
        return Outcome(result=document.get("result"), error=document.get("error"))

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@dataclass
class Invocation:
    function: str
    event: Any
    outcome: Outcome
    cold_start: bool


@dataclass
class FunctionPool:
    """The sandboxes of one function (Lambda scales out: one sandbox per concurrent invocation)."""

    name: str
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    log: Callable[[str], None]
    # Lambda scales out per concurrent invocation; locally at most 4 sandboxes per function (a small
    # shared machine): a fifth concurrent invocation waits for a free sandbox instead of a 429.
    max_concurrency: int = 4
    faults: list[Fault] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    cold_starts: int = 0
    clock_offset_seconds: float = 0.0  # how far ahead of the real clock the function's clock runs

    def __post_init__(self) -> None:
        self._idle: list[Sandbox] = []
        self._all: list[Sandbox] = []
        self._retired: set[Sandbox] = set()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(self.max_concurrency)

    def renew_environment(self, environment: dict[str, str]) -> None:
        """New sandboxes get ``environment`` (e.g. a new session's credentials); the current ones are
        retired: idle ones stop now, busy ones when their invocation ends."""
        with self._lock:
            self.environment = environment
            idle, self._idle = self._idle, []
            self._retired.update(self._all)
        for sandbox in idle:
            sandbox.stop()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _take_fault(self, event: Any) -> dict[str, Any] | None:
        text = json.dumps(event, default=str)
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.when in text:
                    fault.times -= 1
                    return {"kind": fault.kind, "after_bytes": fault.after_bytes}
        return None

    def invoke(self, event: Any) -> Outcome:
        with self._slots:
            with self._lock:
                sandbox = self._idle.pop() if self._idle else None
            cold = sandbox is None
            if sandbox is None:
                sandbox = Sandbox(self.name, self.environment, self.memory_mb, self.log)
                with self._lock:
                    self._all.append(sandbox)
                    self.cold_starts += 1
            outcome = sandbox.invoke(
                event, self.timeout_seconds, self._take_fault(event), self.clock_offset_seconds
            )
            with self._lock:
                self.invocations.append(Invocation(self.name, event, outcome, cold))
                retired = sandbox in self._retired
                if sandbox.alive and not outcome.stopped and not retired:
                    self._idle.append(sandbox)
            if retired:
                sandbox.stop()
            return outcome

    def stop(self) -> None:
        with self._lock:
            sandboxes, self._idle = list(self._all), []
        for sandbox in sandboxes:
            sandbox.stop()


class AsyncInvoker:
    """Lambda's async invocation: queued, retried per EventInvokeConfig, then the OnFailure destination."""

    def __init__(
        self, send_to_destination: Callable[[str, dict[str, Any]], None], retry_delay_seconds: float
    ) -> None:
        self._send = send_to_destination
        self._delay = retry_delay_seconds
        self.threads: list[threading.Thread] = []
        self.destination_records: list[dict[str, Any]] = []

    def invoke(self, pool: FunctionPool, event: Any, max_retries: int, on_failure: str | None) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(pool, event, max_retries, on_failure),
            daemon=True,
            name=f"async-{pool.name}",
        )
        self.threads.append(thread)
        thread.start()

    def _run(self, pool: FunctionPool, event: Any, max_retries: int, on_failure: str | None) -> None:
        outcome = Outcome()
        attempts = 0
        for attempts in range(1, max_retries + 2):
            outcome = pool.invoke(event)
            if not outcome.failed:
                return
            if attempts <= max_retries:
                time.sleep(self._delay)
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{pool.name}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": outcome.error,
        }
        self.destination_records.append(record)
        if on_failure:
            self._send(on_failure, record)
