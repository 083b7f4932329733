"""Errors the simulated Sinch API answers with.

SimulatorError               {"code", "text"} with an HTTP status (400, 404, 409, 415, 429)
Unauthorized                 401 with an empty text/plain body, like Sinch
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response


class SimulatorError(Exception):
    """An error answer with Sinch's `{"code": ..., "text": ...}` body."""

    def __init__(
        self, status: int, code: str, text: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text
        self.headers = headers or {}


class Unauthorized(Exception):
    """A missing, wrong or expired credential."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("expired token" if expired else "unauthorized")
        self.expired = expired


def error_response(exc: SimulatorError) -> Response:
    return JSONResponse(
        {"code": exc.code, "text": exc.text}, status_code=exc.status, headers=exc.headers
    )


def unauthorized_response(exc: Unauthorized) -> Response:
    # Sinch answers 401 with an empty text/plain body.
    headers = {"www-authenticate": 'Bearer error="expired"'} if exc.expired else None
    return Response(b"", status_code=401, media_type="text/plain", headers=headers)


def invalid_json(text: str = "The request body is not valid JSON.") -> SimulatorError:
    return SimulatorError(400, "syntax_invalid_json", text)


def constraint_violation(text: str) -> SimulatorError:
    return SimulatorError(400, "syntax_constraint_violation", text)


def invalid_format(text: str) -> SimulatorError:
    return SimulatorError(400, "syntax_invalid_parameter_format", text)


def not_found(what: str) -> SimulatorError:
    return SimulatorError(404, "not_found", f"{what} was not found.")


def unsupported_media_type(content_type: str | None) -> SimulatorError:
    given = f"got {content_type!r}" if content_type else "none was given"
    return SimulatorError(
        415,
        "unsupported_media_type",
        f"The request body must be sent as Content-Type: application/json; {given}.",
    )
