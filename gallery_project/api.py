"""`POST /api/auth/token/`: a username and password for an API token, at most AXES_FAILURE_LIMIT wrong ones."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from knox.views import LoginView
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .views import login_lockout_message, login_lockout_seconds

_Token = inline_serializer(
    "ApiToken",
    {
        "token": serializers.CharField(help_text="Send as `Authorization: Token <token>`; it is shown only now."),
        "expiry": serializers.DateTimeField(allow_null=True, help_text="Pushed back each time the token is used."),
    },
)


class TokenLoginView(LoginView):
    """Knox's token view, given the username and password in the body rather than an existing login.

    Knox stores only a hash of the token, so each call makes a new one (revoke tokens in the admin).
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(request=AuthTokenSerializer, responses=_Token)
    def post(self, request: Request, format=None) -> Response:
        form = AuthTokenSerializer(data=request.data, context={"request": request})
        valid = form.is_valid()
        # django-axes marks the request once this (username, address) pair has failed too often, even when the
        # password was right this time.
        if getattr(request, "axes_locked_out", False):
            raise Throttled(wait=login_lockout_seconds(), detail=login_lockout_message())
        if not valid:
            raise serializers.ValidationError(form.errors)
        request.user = form.validated_data["user"]
        return super().post(request, format)
