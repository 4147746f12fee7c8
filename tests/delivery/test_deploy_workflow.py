"""The deploy workflow and the docs against the infra's one list of deploy environments."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
sys.path.insert(0, str(REPO / "infra"))

from order_infra.alarm_routing import (  # noqa: E402
    SUBSCRIBER_CONTEXT,
    SUBSCRIBER_VARIABLE,
)
from order_infra.config import (  # noqa: E402
    DEPLOY_ENVIRONMENTS,
    DEPLOYED_TAG_PREFIX,
    ENVIRONMENTS,
    RDS_CA_BUNDLE_PATH,
)

REUSABLE = "./.github/workflows/deploy-environment.yml"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def deploy_chain() -> list[str]:
    """The environments deploy.yml deploys, in the order its `needs` impose."""
    jobs = workflow("deploy.yml")["jobs"]
    calls = {name: job for name, job in jobs.items() if job.get("uses") == REUSABLE}
    order: list[str] = []
    previous = "image"

    def after(job: dict[str, Any]) -> str:
        """The job this one waits for, besides the image job it takes the digest from."""
        needs = job.get("needs")
        (waits_for,) = [needs] if isinstance(needs, str) else set(needs) - {"image"} or {"image"}
        return str(waits_for)

    while True:
        following = [n for n, job in calls.items() if after(job) == previous]
        if not following:
            return order
        (name,) = following
        order.append(calls[name]["with"]["environment"])
        previous = name


def test_the_workflow_deploys_every_environment_in_promotion_order() -> None:
    assert deploy_chain() == list(DEPLOY_ENVIRONMENTS)


def test_no_workflow_wide_concurrency_but_one_group_per_environment() -> None:
    assert "concurrency" not in workflow("deploy.yml")
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    assert job["environment"] == "${{ inputs.environment }}"


def test_deploy_steps_exist_once() -> None:
    # The environments share one job definition: no copied dev/prod steps.
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "cdk deploy" not in text and "run-migration" not in text
    assert (WORKFLOWS / "deploy-environment.yml").read_text().count("cdk deploy -c") == 1


def test_the_build_is_skipped_when_the_shas_image_exists() -> None:
    image = workflow("deploy.yml")["jobs"]["image"]
    assert image["environment"] == DEPLOY_ENVIRONMENTS[0]  # the role that may push
    steps = image["steps"]
    (check,) = [s for s in steps if s.get("id") == "existing"]
    assert "aws ecr describe-images" in check["run"]
    assert "imageTag=$TAG" in check["run"]
    build = [s for s in steps if "build-push-action" in s.get("uses", "")]
    login = [s for s in steps if "amazon-ecr-login" in s.get("uses", "")]
    for step in build + login:
        assert step["if"] == "steps.existing.outputs.found != 'true'"
    (build_step,) = build
    assert (
        "RDS_CA_BUNDLE_SHA256=${{ vars.RDS_CA_BUNDLE_SHA256 }}" in build_step["with"]["build-args"]
    )


def test_docs_name_the_environments_of_the_config_only() -> None:
    # One source: DEPLOY_ENVIRONMENTS. A githubEnvironments list in the docs may only name a
    # subset of it (an account that holds some environments), never a diverging default.
    for doc in ("CICD.md", "infra/README.md", "infra/bootstrap_app.py"):
        text = (REPO / doc).read_text()
        for listed in re.findall(r"githubEnvironments=([a-z,]+)", text):
            assert set(listed.split(",")) <= set(DEPLOY_ENVIRONMENTS), (doc, listed)
    cicd = (REPO / "CICD.md").read_text()
    for env in DEPLOY_ENVIRONMENTS:
        assert f"`{env}`" in cicd, env


def test_the_image_ships_the_rds_ca_bundle_it_verifies() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem" in dockerfile
    assert "hashlib.sha256(bundle).hexdigest()" in dockerfile
    assert f"COPY --from=rds-ca {RDS_CA_BUNDLE_PATH} {RDS_CA_BUNDLE_PATH}" in dockerfile


def _deploy_steps() -> list[dict[str, Any]]:
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    return list(job["steps"])


def test_the_deploy_passes_the_environments_alarm_subscriber() -> None:
    # Issue 19: staging's and prod's alarm routing comes from the GitHub environment, never
    # from the repository; the app refuses a deploy of theirs without it.
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    assert job["env"][SUBSCRIBER_VARIABLE] == f"${{{{ vars.{SUBSCRIBER_VARIABLE} }}}}"
    (deploy,) = [s for s in _deploy_steps() if "cdk deploy" in s.get("run", "")]
    assert f'-c "{SUBSCRIBER_CONTEXT}=${SUBSCRIBER_VARIABLE}"' in deploy["run"]
    assert "sample" not in deploy["run"].lower()
    cicd = (REPO / "CICD.md").read_text()
    assert f"`{SUBSCRIBER_VARIABLE}`" in cicd
    for env, config in ENVIRONMENTS.items():
        assert config.alarms.from_deploy is (env != "dev"), env


def test_the_deployed_image_is_tagged_idempotently_before_the_deploy() -> None:
    # Issue 19: the ECR lifecycle keeps deployed-<env>-* images (test_infra_bootstrap.py).
    steps = _deploy_steps()
    names = [s.get("name", "") for s in steps]
    tag_index = next(i for i, s in enumerate(steps) if "put-image" in s.get("run", ""))
    deploy_index = next(i for i, s in enumerate(steps) if "cdk deploy" in s.get("run", ""))
    assert tag_index < deploy_index, names  # nothing runs untagged
    run = steps[tag_index]["run"]
    assert DEPLOYED_TAG_PREFIX.format(env="$DEPLOY_ENV") + "$IMAGE_TAG" in run
    # Tags are immutable: a re-run must find the tag and stop before put-image.
    check = run.index('describe-images --repository-name "$ECR_REPOSITORY"')
    assert run.index('--image-ids "imageTag=$DEPLOYED_TAG"') > check
    assert check < run.index("exit 0") < run.index("put-image")
    # The same manifest, in its own media type and with its digest: the tag names the image
    # that runs, and a manifest converted to schema 1 (another digest) is never asked for.
    # Issue 26: the tag goes on the digest that was scanned and is deployed.
    assert '--image-ids "imageDigest=$IMAGE_DIGEST"' in run
    assert "--image-manifest-media-type" in run
    assert '--image-digest "$DIGEST"' in run
    assert "--accepted-media-types application/vnd.docker.distribution.manifest.v2+json" in run
    assert "docker.distribution.manifest.v1+json" not in run


def test_the_deploy_job_checks_its_account_and_waits_for_the_image() -> None:
    # One account per environment (CICD.md): the environment names its account; the job
    # refuses a role elsewhere, then waits for the replicated image, before any AWS change.
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    names = [step.get("name", "") for step in job["steps"]]
    check = names.index("Check the environment's account")
    wait = names.index("Wait for the image in this account's repository")
    first_change = min(
        names.index("Read stack outputs"),
        names.index("Tag the image as deployed to this environment"),
        names.index("CDK deploy"),
    )
    assert check < wait < first_change
    check_step = job["steps"][check]
    assert check_step["env"]["EXPECTED_ACCOUNT"] == "${{ vars.AWS_ACCOUNT_ID }}"
    assert "exit 1" in check_step["run"]
    assert "aws ecr describe-images" in job["steps"][wait]["run"]
    cicd = (REPO / "CICD.md").read_text()
    assert "`AWS_ACCOUNT_ID`" in cicd


def test_every_environment_deploys_the_digest_the_image_job_pushed_and_scanned() -> None:
    # Issue 26: the digest travels from the image job to each deploy; nothing deploys a tag.
    jobs = workflow("deploy.yml")["jobs"]
    assert jobs["image"]["outputs"]["digest"] == "${{ steps.digest.outputs.digest }}"
    calls = [job for job in jobs.values() if job.get("uses") == REUSABLE]
    assert len(calls) == len(DEPLOY_ENVIRONMENTS)
    for job in calls:
        assert "image" in ([job["needs"]] if isinstance(job["needs"], str) else job["needs"])
        assert job["with"]["image-digest"] == "${{ needs.image.outputs.digest }}"
    reusable = workflow("deploy-environment.yml")
    # yaml reads the `on:` key as True.
    assert reusable[True]["workflow_call"]["inputs"]["image-digest"]["required"] is True
    (job,) = reusable["jobs"].values()
    assert job["env"]["IMAGE_DIGEST"] == "${{ inputs.image-digest }}"
    steps = _deploy_steps()
    (deploy,) = [s for s in steps if "cdk deploy" in s.get("run", "")]
    assert '-c "imageDigest=$IMAGE_DIGEST"' in deploy["run"]
    assert "imageTag" not in deploy["run"]
    (check,) = [s for s in steps if s.get("name") == "Check the environment's account"]
    assert "/$ECR_REPOSITORY@$IMAGE_DIGEST" in check["run"]  # the migration's image too
    (wait,) = [
        s for s in steps if s.get("name") == "Wait for the image in this account's repository"
    ]
    assert '[ "$FOUND" != "$IMAGE_DIGEST" ]' in wait["run"]
    (build,) = [s for s in jobs["image"]["steps"] if s.get("id") == "digest"]
    assert "imageDigest" in build["run"] and '"$BUILT" != "$DIGEST"' in build["run"]
