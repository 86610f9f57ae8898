"""Rewrite the fake InvokeAI's schema from a live server's /openapi.json.

Keeps the node types the fake already has, plus any --add-type; run it after upgrading InvokeAI or when a graph
builder starts using a new node type:

    .venv/bin/python -m testing.refresh_fake_schema --url http://127.0.0.1:9090 [--add-type TYPE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import requests

from . import fake_invokeai

_TIMEOUT = (10, 60)


class SchemaError(Exception):
    """The live server could not be read, or lacks a node type that was asked for."""


def refresh(*, url: str, add_types: Iterable[str] = (), output: Path = fake_invokeai.SCHEMA_PATH) -> str:
    """Write the trimmed schema to `output`; return a one-line summary."""
    try:
        version = requests.get(f"{url}/api/v1/app/version", timeout=_TIMEOUT).json()["version"]
        openapi = requests.get(f"{url}/openapi.json", timeout=_TIMEOUT).json()
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise SchemaError(f"Could not read InvokeAI's schema at {url}: {exc}") from exc
    node_types = sorted({*fake_invokeai.node_types_in_schema(), *add_types})
    try:
        trimmed = fake_invokeai.trim_openapi(openapi, node_types, version=version)
    except ValueError as exc:
        raise SchemaError(str(exc)) from exc
    output.write_text(json.dumps(trimmed, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return f"{output}: {len(node_types)} node types from InvokeAI {version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:9090", help="the InvokeAI to read")
    parser.add_argument("--add-type", action="append", default=[], help="a node type to keep as well")
    parser.add_argument("--output", type=Path, default=fake_invokeai.SCHEMA_PATH)
    args = parser.parse_args(argv)
    try:
        print(refresh(url=args.url, add_types=args.add_type, output=args.output))
    except SchemaError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
