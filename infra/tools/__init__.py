"""Tooling around the CDK app, not part of it: synthesis with its policy checks (make synth),
the documents' figures and the scaling simulation (make docs-figures), the kept bootstrap
templates (make bootstrap-templates). Imports order_infra; order_infra never imports it."""
