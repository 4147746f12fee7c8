"""AWS CDK infrastructure of the order-processing service."""
