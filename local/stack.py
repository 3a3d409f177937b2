"""The whole local AWS side in one object: DynamoDB Local + moto server, resources created."""

import os
import sys

from local import provision, services
from local.template import ROOT


class LocalStack:
    def __init__(self, dynamodb_port: int | None = None, moto_port: int | None = None) -> None:
        self.dynamodb_port, self.moto_port = dynamodb_port, moto_port
        self.dynamodb = self.moto = None

    def start(self) -> "LocalStack":
        try:
            self.dynamodb = services.start_dynamodb_local(self.dynamodb_port)
            self.moto = services.start_moto(self.moto_port)
            self.endpoints = services.endpoint_environment(self.dynamodb, self.moto)
            self.resources = provision.create_resources(self.endpoints)
        except BaseException:
            self.stop()
            raise
        self.environment = provision.handler_environment(self.endpoints)
        return self

    def export_to_process(self) -> None:
        """Handlers run in this process: give them the template's environment and the layer."""
        os.environ.update(self.environment)
        layer = str(ROOT / "layers" / "shared")
        if layer not in sys.path:
            sys.path.insert(0, layer)

    def stop(self) -> None:
        for service in (self.moto, self.dynamodb):
            if service is not None:
                service.stop()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
