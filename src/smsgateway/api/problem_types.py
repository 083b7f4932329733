"""``/problems``: the error catalogue, served at the URI each problem's ``type`` names."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from smsgateway.api.problem_catalogue import FIELD_CODES, PROBLEM_CODES, PROBLEM_KINDS
from smsgateway.api.problems import ProblemError

router = APIRouter(prefix="/problems", tags=["problems"])


class ProblemTypeOut(BaseModel):
    """What one problem ``code`` means, and the status it comes with."""

    code: str = Field(
        examples=["message_not_found"], json_schema_extra={"enum": list(PROBLEM_CODES)}
    )
    status: int = Field(examples=[404])
    title: str = Field(description="The status's reason phrase.", examples=["Not Found"])
    meaning: str = Field(examples=["The caller's tenant has no message with this id."])


class FieldCodeOut(BaseModel):
    """One code a failing field (``errors[].code``) can carry."""

    code: str = Field(examples=["required"], json_schema_extra={"enum": list(FIELD_CODES)})
    meaning: str = Field(examples=["The field is required."])


class ProblemCatalogueOut(BaseModel):
    """Every problem code, and every code of a failing field."""

    problems: list[ProblemTypeOut]
    field_codes: list[FieldCodeOut]


@router.get(
    "",
    operation_id="listProblemTypes",
    summary="The error catalogue: every problem code and field code with its meaning",
)
async def list_problem_types() -> ProblemCatalogueOut:
    """Public: no API key needed. Codes are stable; new ones may be added."""
    return ProblemCatalogueOut(
        problems=[_type_out(code) for code in PROBLEM_CODES],
        field_codes=[
            FieldCodeOut(code=code, meaning=meaning) for code, meaning in FIELD_CODES.items()
        ],
    )


@router.get(
    "/{code}",
    operation_id="getProblemType",
    summary="What one problem code means (the URI in a problem's `type`)",
    responses={404: {"description": "No such problem code"}},
)
async def get_problem_type(
    code: Annotated[str, Path(description="A problem `code`, e.g. `message_not_found`.")],
) -> ProblemTypeOut:
    """Public: no API key needed; 404 `not_found` for a code the gateway never answers with."""
    if code not in PROBLEM_KINDS:
        raise ProblemError(404, "not_found", f"There is no problem code {code!r}.")
    return _type_out(code)


def _type_out(code: str) -> ProblemTypeOut:
    kind = PROBLEM_KINDS[code]
    return ProblemTypeOut(
        code=kind.code,
        status=kind.status,
        title=HTTPStatus(kind.status).phrase,
        meaning=kind.meaning,
    )
