"""Process supervision: start the workers, restart the ones that die, stop them all on request."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from streamdesk.exceptions import ConfigurationError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def terminate_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when its parent dies, so no child outlives a killed `up`.

    Linux sends it when the *thread* that started the child exits: start children from the main thread.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes] | None, *, timeout_s: float) -> None:
    """Terminate `process` (when it still runs) and wait for it; kill it if it is not gone within `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@dataclass
class ManagedProcess:
    """A child command kept running by the supervisor."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    log_path: str | None = None
    group: str = ""
    """The worker group (consumer group) the child belongs to: its name unless it is one of several replicas."""

    def __post_init__(self) -> None:
        self.group = self.group or self.name

    def start(self) -> None:
        """Start the child in its own session, so a terminal's Ctrl-C reaches only the supervisor, which stops
        the children in order (intake first, then the workers once they have drained)."""
        stdout = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
        log.info("started %s (pid %s)", self.name, self.process.pid)


@dataclass
class Supervisor:
    """Keeps a set of child processes alive with exponential back-off between restarts."""

    processes: list[ManagedProcess] = field(default_factory=list)
    max_backoff_s: float = 30.0

    def add(
        self, name: str, argv: list[str], *, env: dict[str, str], log_path: str | None = None, group: str = ""
    ) -> ManagedProcess:
        """Add child `name` (a replica of `group`, when given); it starts with `start`."""
        if any(proc.name == name for proc in self.processes):
            raise ConfigurationError(f"a child named {name!r} is already supervised; give each child its own name")
        proc = ManagedProcess(name, argv, env, log_path=log_path, group=group)
        self.processes.append(proc)
        return proc

    def add_replicas(
        self, group: str, argv: list[str], *, env: dict[str, str], replicas: int, log_dir: Path | None = None
    ) -> list[str]:
        """Add `replicas` more children of `group` (one consumer group scaled by partitions); their names.

        The first replica is named after the group (`ingest`), the others `<group>-<n>` (`ingest-2`); each logs to
        `<log_dir>/<name>.log`.
        """
        taken = len(self.replicas(group))
        names = [group if n == 1 else f"{group}-{n}" for n in range(taken + 1, taken + replicas + 1)]
        for name in names:
            self.add(name, argv, env=env, log_path=str(log_dir / f"{name}.log") if log_dir else None, group=group)
        return names

    def replicas(self, group: str) -> list[str]:
        """The names of the children of `group`, in the order they were added."""
        return [proc.name for proc in self.processes if proc.group == group]

    def groups(self) -> dict[str, int]:
        """Each group's replica count, in the order the groups were added."""
        return dict(Counter(proc.group for proc in self.processes))

    def child(self, name: str) -> ManagedProcess:
        """The child named `name`."""
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise ConfigurationError(f"no child named {name!r}; supervised: {', '.join(self.names())}")

    def kill(self, name: str) -> None:
        """SIGKILL child `name` (as a crash would); `poll` restarts it after its back-off."""
        proc = self.child(name).process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def start(self, names: Iterable[str] | None = None) -> None:
        """Start the children (those named in `names`, when given)."""
        for proc in self._select(names):
            proc.start()

    def _select(self, names: Iterable[str] | None) -> list[ManagedProcess]:
        if names is None:
            return list(self.processes)
        wanted = set(names)
        return [proc for proc in self.processes if proc.name in wanted]

    def names(self) -> list[str]:
        """The children's names, in the order they were added."""
        return [proc.name for proc in self.processes]

    def poll(self) -> list[str]:
        """Restart children that exited; return the names restarted now."""
        restarted = []
        now = time.monotonic()
        for proc in self.processes:
            if proc.process is None or proc.process.poll() is None:
                continue
            if proc.next_start == 0.0:
                proc.restarts += 1
                delay = min(self.max_backoff_s, 0.5 * 2 ** min(proc.restarts, 6))
                proc.next_start = now + delay
                log.warning("%s exited with %s; restarting in %.1fs", proc.name, proc.process.returncode, delay)
            elif now >= proc.next_start:
                proc.next_start = 0.0
                proc.start()
                restarted.append(proc.name)
        return restarted

    def stop(self, timeout_s: float = 15.0, *, names: Iterable[str] | None = None) -> None:
        """SIGTERM every child (those named in `names`, when given), then SIGKILL whatever is left after `timeout_s`.

        A stopped child is not restarted by `poll` until it is started again.
        """
        chosen = self._select(names)
        for proc in chosen:
            proc.next_start = 0.0
            if proc.process is not None and proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in chosen:
            if proc.process is None:
                continue
            try:
                proc.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", proc.name, timeout_s)
                proc.process.kill()
                proc.process.wait()
            proc.process = None


def streamdesk_argv(*args: str) -> list[str]:
    """argv that runs the streamdesk CLI with this interpreter."""
    return [sys.executable, "-m", "streamdesk.cli.main", *args]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours plus `extra`, models offline."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.update(extra)
    return env
