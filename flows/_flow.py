"""The Prefect ``Flow`` class of gnnrec's flows: Prefect's own, with JSON parameters sent as they are.

Prefect encodes a flow run's parameters with FastAPI's ``jsonable_encoder``, which imports FastAPI (about
half a second per stage process on 2 cores). gnnrec's flows take strings, booleans, ``None`` and lists of
strings, which are JSON already: :class:`JsonFlow` sends those unchanged and leaves any other value to
Prefect's encoder.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from prefect import Flow


class JsonFlow(Flow):
    """A Prefect flow whose JSON-native parameters skip FastAPI's encoder."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        try:
            return json.loads(json.dumps(parameters, allow_nan=False))
        except (TypeError, ValueError):                    # not plain JSON: Prefect's own encoding
            return super().serialize_parameters(parameters)


def json_flow(**options: Any) -> Callable[[Callable[..., Any]], JsonFlow]:
    """``@json_flow(name=..., ...)``: like ``@prefect.flow(...)``, building a :class:`JsonFlow`."""
    def decorate(fn: Callable[..., Any]) -> JsonFlow:
        return JsonFlow(fn=fn, **options)
    return decorate
