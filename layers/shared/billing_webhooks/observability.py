"""Powertools Logger and Metrics, one of each per container (service and namespace from env)."""

from aws_lambda_powertools import Logger, Metrics

logger = Logger(utc=True)
metrics = Metrics()
