"""Step parameters and conditions as Jinja expressions over the run's context.

Values come from alerts and cases, so attacker-controlled text: templates run in
Jinja's immutable sandbox. A string that is exactly one ``{{ expression }}`` keeps
the expression's type (a list of IPs stays a list).
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from govsoc.errors import PlaybookError

_ENV = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
_ENV.filters["unique"] = lambda values: list(dict.fromkeys(values or []))
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    try:
        if isinstance(value, str):
            single = _SINGLE.match(value)
            if single:
                result = _ENV.compile_expression(single["expr"], undefined_to_none=True)(
                    **variables)
                return result
            if "{{" in value or "{%" in value:
                return _ENV.from_string(value).render(**variables)
            return value
        if isinstance(value, dict):
            return {k: render_value(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [render_value(v, variables) for v in value]
        return value
    except TemplateError as exc:
        raise PlaybookError(f"template {value!r}: {exc}") from None


def evaluate_condition(expression: str, variables: dict[str, Any]) -> bool:
    try:
        return bool(_ENV.compile_expression(expression, undefined_to_none=True)(**variables))
    except TemplateError as exc:
        raise PlaybookError(f"condition {expression!r}: {exc}") from None
