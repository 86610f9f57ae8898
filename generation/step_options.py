"""Per-model step options, in CyberImage's shape, and the `MODEL_*` environment lines that can carry them.

`{"fixed_steps": N}` pins the step count (distilled models: FLUX schnell, SDXL turbo);
`{"steps": {"min", "max", "default"}}` bounds the UI's slider. A line is
`<name>;<repo>;<description>;<source>;<requires_auth>[;<options>]`, and applies to the InvokeAI model
named <name> or installed from <repo>.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MAX_STEPS = 200


@dataclass(frozen=True)
class StepOptions:
    minimum: int
    maximum: int
    default: int

    @property
    def fixed(self) -> bool:
        return self.minimum == self.maximum

    def as_dict(self) -> dict[str, Any]:
        if self.fixed:
            return {"fixed_steps": self.default}
        return {"steps": {"min": self.minimum, "max": self.maximum, "default": self.default}}


def _steps(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_STEPS:
        raise ValueError(f"{what} must be a whole number of steps from 1 to {MAX_STEPS}.")
    return value


def parse_step_options(options: Any) -> StepOptions | None:
    """The step options in `options` (other keys are left alone), or None; ValueError if malformed."""
    if not isinstance(options, dict):
        raise ValueError('Options must be a JSON object, e.g. {"fixed_steps": 4}.')
    if "fixed_steps" in options:
        steps = _steps(options["fixed_steps"], "fixed_steps")
        return StepOptions(minimum=steps, maximum=steps, default=steps)
    if "steps" in options:
        bounds = options["steps"]
        if not isinstance(bounds, dict) or set(bounds) != {"min", "max", "default"}:
            raise ValueError('"steps" must be {"min": N, "max": N, "default": N}.')
        low, high, default = (_steps(bounds[key], f"steps.{key}") for key in ("min", "max", "default"))
        if not low <= default <= high:
            raise ValueError("steps needs min <= default <= max.")
        return StepOptions(minimum=low, maximum=high, default=default)
    return None


@dataclass(frozen=True)
class ModelLine:
    """One `MODEL_*` environment line."""

    variable: str
    name: str
    repo: str
    options: dict[str, Any]


def _options_json(text: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # CyberImage's .env.example escapes the quotes for shells (\" or \\"); undo that before giving up.
        return json.loads(text.replace("\\\\", "\\").replace('\\"', '"'))


def parse_model_lines(definitions: Mapping[str, str]) -> list[ModelLine]:
    """The well-formed lines, in variable order; a malformed one is logged and skipped, never fatal."""
    lines = []
    for variable in sorted(definitions):
        raw = definitions[variable].strip().strip("'\"")
        parts = raw.split(";", 5)
        try:
            if len(parts) < 5 or not parts[0].strip():
                raise ValueError("expected <name>;<repo>;<description>;<source>;<requires_auth>[;<options_json>]")
            options = _options_json(parts[5]) if len(parts) == 6 and parts[5].strip() else {}
            parse_step_options(options)
        except ValueError as exc:
            logger.warning("Ignoring %s: %s", variable, exc)
            continue
        lines.append(ModelLine(variable=variable, name=parts[0].strip(), repo=parts[1].strip(), options=options))
    return lines
