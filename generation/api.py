"""The model cache's API: list (favorites first), favorite and step options, refresh from InvokeAI."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from . import models_cache
from .models import CachedModel
from .serializers import (
    CachedModelSerializer,
    ModelListQuerySerializer,
    ModelUpdateSerializer,
    RefreshResultSerializer,
)


class CachedModelViewSet(viewsets.GenericViewSet):
    serializer_class = CachedModelSerializer
    queryset = CachedModel.objects.none()
    lookup_field = "key"

    @extend_schema(parameters=[ModelListQuerySerializer])
    def list(self, request: Request) -> Response:
        query = ModelListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        models = models_cache.model_list(
            model_type=query.validated_data["type"] or None,
            base=query.validated_data["base"] or None,
            include_unavailable=query.validated_data["include_unavailable"],
        )
        return Response(CachedModelSerializer(models, many=True).data)

    def retrieve(self, request: Request, key: str) -> Response:
        return Response(CachedModelSerializer(models_cache.model_get(key=key)).data)

    @extend_schema(request=ModelUpdateSerializer)
    def partial_update(self, request: Request, key: str) -> Response:
        form = ModelUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        model = models_cache.model_update(key=key, **form.validated_data)
        return Response(CachedModelSerializer(model).data)

    @extend_schema(request=None, responses=RefreshResultSerializer)
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        return Response(RefreshResultSerializer(models_cache.models_refresh()).data)
