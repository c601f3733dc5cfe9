"""The structured deliverable every agent must return, and its JSON schema for the model."""

from __future__ import annotations

import copy
import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Deliverable(BaseModel):
    """What an agent hands back for a work unit. Validated before anything is stored."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=10, max_length=2000, description="Two or three sentences: what was delivered")
    content: str = Field(min_length=20, description="The deliverable itself (markdown): designs, configs, code, reports")
    status: Literal["done", "blocked"] = Field(description="done if the acceptance criteria are met, else blocked")
    blockers: list[str] = Field(default_factory=list, description="What stops the work; empty when done")
    progress: int = Field(ge=0, le=100, description="Percent of this work unit that is complete")


TOOL_NAME = "submit_deliverable"


def deliverable_tool() -> dict:
    """The forced tool through which the model returns a ``Deliverable`` (a copy: callers may
    change it)."""
    return copy.deepcopy(_deliverable_tool())


@functools.cache
def _deliverable_tool() -> dict:
    # pydantic builds the JSON schema anew on every call (~2 ms of CPU): once per process
    schema = Deliverable.model_json_schema()
    schema.pop("title", None)
    return {
        "name": TOOL_NAME,
        "description": "Submit the deliverable for the work unit. Call exactly once.",
        "input_schema": schema,
    }
