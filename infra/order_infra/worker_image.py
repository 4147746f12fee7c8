"""Which image the tasks run: the one CI pushed, or the placeholder of a first deploy."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs

from .config import HEALTH_PATH, HEALTH_PORT

# Serves GET /health -> 200 and nothing else; the stand-in for the worker's dummy mode while
# no image is in ECR yet (first creation of the stack). Python's stdlib only.
PLACEHOLDER_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
PLACEHOLDER_SERVER = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    f"        self.send_response(200 if self.path == {HEALTH_PATH!r} else 404)\n"
    "        self.end_headers()\n"
    f"h.HTTPServer(('', {HEALTH_PORT}), H).serve_forever()\n"
)


@dataclass(frozen=True, kw_only=True)
class WorkerImage:
    """Which image the tasks run and how to start each of its commands."""

    image: ecs.ContainerImage
    worker_mode: str
    worker_command: list[str]
    migrate_command: list[str]
    rotate_command: list[str]
    health_check_command: list[str]
    entry_point: list[str] | None = None  # None: the image's own ENTRYPOINT
    description: str = field(default="")

    @classmethod
    def from_ecr(cls, repository: ecr.IRepository, digest: str) -> WorkerImage:
        """The order-service image CI pushed and scanned (linux/arm64), by its digest
        (`sha256:...`: the CDK writes `<repository>@<digest>`), in normal mode."""
        if not digest.startswith("sha256:"):
            raise ValueError(f"an image digest starts with sha256:, not {digest!r}")
        return cls(
            image=ecs.ContainerImage.from_ecr_repository(repository, digest),
            worker_mode="normal",
            worker_command=["worker"],
            migrate_command=["migrate"],
            rotate_command=["rotate-credentials"],
            health_check_command=["CMD", "order-service", "healthcheck"],
            description=f"{repository.repository_name}@{digest}",
        )

    @classmethod
    def placeholder(cls) -> WorkerImage:
        """A public multi-arch image that answers /health, for the very first deploy."""
        check = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{HEALTH_PORT}/health')"
        return cls(
            image=ecs.ContainerImage.from_registry(PLACEHOLDER_IMAGE),
            worker_mode="dummy",
            entry_point=["python", "-c"],
            worker_command=[PLACEHOLDER_SERVER],
            migrate_command=["print('dummy mode: nothing to migrate')"],
            rotate_command=["print('dummy mode: nothing to rotate')"],
            health_check_command=["CMD", "python", "-c", check],
            description=PLACEHOLDER_IMAGE,
        )
