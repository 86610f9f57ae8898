"""The project's one error vocabulary and its mapping to HTTP.

Services raise `AppError` subclasses with a message a person can act on. The API renders every error, ours or
DRF's or Django's, as `{"code", "message", "details"}`; pages render the message. Nothing else maps errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)


class AppError(Exception):
    """An error the user or the client can understand, with a stable code and an HTTP status."""

    status = 400
    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(AppError):
    status = 400
    code = "invalid"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class TooLarge(AppError):
    status = 413
    code = "too_large"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"


class UpstreamError(AppError):
    """A service we depend on (InvokeAI, RunPod) failed or answered nonsense."""

    status = 502
    code = "upstream_error"


class Unavailable(AppError):
    """A service we depend on is not reachable right now; trying again later may work."""

    status = 503
    code = "unavailable"


# Paths answered as the API, errors included: JSON, never a page. CyberImage's API has a prefix of its own.
API_PATH_PREFIXES = ("/api/", "/cyberimage/api/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


_DRF_CODES: dict[type[drf_exceptions.APIException], str] = {
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "rate_limited",
    drf_exceptions.ParseError: "parse_error",
    drf_exceptions.ValidationError: "invalid",
}


def _first_message(detail: Any) -> str:
    """Pick a readable sentence out of DRF's nested error detail."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field in ("non_field_errors", "detail") else f"{field}: {message}"
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error leaves as {code, message, details}."""
    headers: dict[str, str] = {}
    details: Any
    if isinstance(exc, AppError):
        status, body = exc.status, exc.as_dict()
    elif isinstance(exc, Http404):
        status, body = 404, error_body("not_found", "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        status, body = 403, error_body("permission_denied", "You do not have permission to do this.")
    elif isinstance(exc, DjangoValidationError):
        status = 400
        details = exc.message_dict if hasattr(exc, "error_dict") else {"errors": exc.messages}
        body = error_body("invalid", exc.messages[0] if exc.messages else "Invalid input.", details)
    elif isinstance(exc, drf_exceptions.APIException):
        status = exc.status_code
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        details = exc.detail if isinstance(exc.detail, dict | list) else {}
        if isinstance(details, list):
            details = {"errors": details}
        body = error_body(code, _first_message(exc.detail), details)
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        if wait := getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(wait))
    else:
        return None
    set_rollback()
    return Response(body, status=status, headers=headers)


class AppErrorMiddleware:
    """Render an AppError raised by a page view: a partial for htmx, a page otherwise, JSON for the API.

    It also refuses a query string with a NUL character before any view reads it: no text column can hold one
    (PostgreSQL raises, a 500), and views read some parameters straight from `request.GET`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            refusal = InvalidInput("The address has a NUL character (%00) in its query.", code="invalid_character")
            return self.process_exception(request, refusal)
        return None

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, AppError):
            return None
        if is_api_path(request.path):
            return JsonResponse(exc.as_dict(), status=exc.status)
        template = "errors/app_error.html"
        if getattr(request, "htmx", False):
            template += "#error-message"
        return render(request, template, {"error": exc}, status=exc.status)


def _page_or_json(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse(error_body(code, message), status=status)
    return render(request, f"errors/{status}.html", {"message": message}, status=status)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, 404, "not_found", "Not found.")


def handler500(request: HttpRequest) -> HttpResponse:
    return _page_or_json(request, 500, "server_error", "Something went wrong on the server; it has been logged.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # A PermissionDenied raised with a reason (gallery_project.permissions) says why; CSRF failures do not.
    reason = str(exception) if isinstance(exception, DjangoPermissionDenied) and str(exception) else ""
    return _page_or_json(request, 403, "permission_denied", reason or "You do not have permission to do this.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, 400, "bad_request", "The request was not understood.")
