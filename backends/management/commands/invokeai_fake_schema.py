import json
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backends.invokeai import fake


class Command(BaseCommand):
    help = (
        "Rewrite the fake InvokeAI's schema from a live server's /openapi.json, keeping the node types it "
        "has plus any --add-type: run it after upgrading InvokeAI or when graph builders use a new node type."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default=settings.INVOKEAI_LOCAL_URL, help="the InvokeAI to read")
        parser.add_argument("--add-type", action="append", default=[], help="a node type to keep as well")
        parser.add_argument("--output", type=Path, default=fake.SCHEMA_PATH)

    def handle(self, *args, url: str, add_type: list[str], output: Path, **options) -> None:
        timeout = (settings.INVOKEAI_CONNECTION_TIMEOUT, settings.INVOKEAI_READ_TIMEOUT)
        try:
            version = requests.get(f"{url}/api/v1/app/version", timeout=timeout).json()["version"]
            openapi = requests.get(f"{url}/openapi.json", timeout=timeout).json()
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise CommandError(f"Could not read InvokeAI's schema at {url}: {exc}") from exc
        node_types = sorted({*fake.node_types_in_schema(), *add_type})
        try:
            trimmed = fake.trim_openapi(openapi, node_types, version=version)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        output.write_text(json.dumps(trimmed, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        self.stdout.write(f"{output}: {len(node_types)} node types from InvokeAI {version}")
