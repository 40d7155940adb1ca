"""Request bodies the target accepts, as pydantic models (FastAPI answers 422 for others).

Only writes carry bodies, so validating them costs nothing on the read-heavy hot path.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=_EMAIL)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=2000)]


class LoginBody(BaseModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RefreshBody(BaseModel):
    refresh_token: str | None = None


class ClientCreate(BaseModel):
    name: Name
    email: Email | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    company: ShortText | None = None
    notes: LongText | None = None


class ClientUpdate(BaseModel):
    name: Name | None = None
    email: Email | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    company: ShortText | None = None
    notes: LongText | None = None


class N8nConfig(BaseModel):
    n8n_url: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^https?://\S+$")
    ]
    n8n_api_key: Annotated[str, StringConstraints(min_length=8, max_length=500)]


class WorkflowPatch(BaseModel):
    name: Name | None = None
    active: bool | None = Field(default=None, strict=True)
