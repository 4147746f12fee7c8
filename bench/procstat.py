"""CPU and memory of processes, read from /proc (Linux): what the OS charged them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of one process (+ its reaped children's with `children`)."""
    fields = _stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat(5))
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the resident set's high-water mark since the process started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def child_pids(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == parent:
                    pids.append(int(entry.name))
            except (OSError, ValueError):
                continue  # gone meanwhile
    return pids


@dataclass(frozen=True)
class PostgresCpu:
    """All CPU of a PostgreSQL cluster: the postmaster, its live backends, and (through the
    postmaster's cutime) the backends that exited since."""

    postmaster_pid: int

    @classmethod
    def of(cls, data_dir: Path) -> PostgresCpu:
        return cls(int((data_dir / "postmaster.pid").read_text().split()[0]))

    def seconds(self) -> float:
        total = cpu_seconds(self.postmaster_pid, children=True)
        for pid in child_pids(self.postmaster_pid):
            try:
                total += cpu_seconds(pid)
            except OSError:
                continue  # exited between the listing and the read; now in cutime
        return total
