"""What the config's instance classes are: memory, vCPUs, burstable or not. One table, so the
alarms (monitoring.py), the capacity figures and the cost figures (infra/tools/) agree. What
they cost is infra/tools/prices.py's (the stack never needs a price)."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
# RDS for PostgreSQL's default: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000).
# DBInstanceClassMemory is the class's memory minus what RDS keeps for the OS and its agents:
# taken as 90% here, which is why the figures are estimates (SHOW max_connections is the truth).
RDS_MAX_CONNECTIONS_DIVISOR = 9_531_392
RDS_USABLE_MEMORY_SHARE = 0.9
# Connections RDS holds whatever the application does: superuser_reserved_connections (3) and
# the rdsadmin sessions (monitoring, up to 3 seen).
RDS_RESERVED_CONNECTIONS = 6


@dataclass(frozen=True, kw_only=True)
class DatabaseClass:
    memory_gib: float
    vcpus: int
    burstable: bool
    baseline_cpu_share: float = 1.0  # burstable classes: the share of a vCPU sustained

    @property
    def max_connections(self) -> int:
        usable = self.memory_gib * GIB * RDS_USABLE_MEMORY_SHARE
        return min(int(usable / RDS_MAX_CONNECTIONS_DIVISOR), 5000)


DATABASE_CLASSES: dict[str, DatabaseClass] = {
    "t4g.micro": DatabaseClass(memory_gib=1, vcpus=2, burstable=True, baseline_cpu_share=0.10),
    "t4g.small": DatabaseClass(memory_gib=2, vcpus=2, burstable=True, baseline_cpu_share=0.20),
    "t4g.medium": DatabaseClass(memory_gib=4, vcpus=2, burstable=True, baseline_cpu_share=0.20),
    "m7g.large": DatabaseClass(memory_gib=8, vcpus=2, burstable=False),
    "m7g.xlarge": DatabaseClass(memory_gib=16, vcpus=4, burstable=False),
    "m7g.2xlarge": DatabaseClass(memory_gib=32, vcpus=8, burstable=False),
    "r7g.large": DatabaseClass(memory_gib=16, vcpus=2, burstable=False),
}


def database_class(instance_type: str) -> DatabaseClass:
    try:
        return DATABASE_CLASSES[instance_type]
    except KeyError:
        raise ValueError(
            f"unknown database class {instance_type!r}: add it to infra/order_infra/catalog.py"
        ) from None
