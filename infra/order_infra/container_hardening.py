"""What every container of the stack gives up: all Linux capabilities (issue 26).

The worker, the migration and the trace collector run as non-root users on read-only root
filesystems and bind no port below 1024, so they need no capability at all; dropping ALL
takes away what Docker's default set would still let a compromised process do (chown, kill
other processes of the task, raw sockets, setuid). Fargate allows only SYS_PTRACE to be
added, so an empty set is the whole of what the task can be given.
"""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from constructs import Construct


def no_capabilities(scope: Construct, construct_id: str) -> ecs.LinuxParameters:
    """Linux parameters for one container definition: every capability dropped."""
    parameters = ecs.LinuxParameters(scope, construct_id)
    parameters.drop_capabilities(ecs.Capability.ALL)
    return parameters
