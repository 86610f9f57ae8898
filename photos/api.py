"""The photos API: thin DRF views that parse, call services/selectors and render."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from django.conf import settings
from django.http import HttpResponseBase, StreamingHttpResponse
from django.urls import re_path
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gallery_project.errors import NotFound, TooLarge
from gallery_project.permissions import signed_in

from . import archive, media, selectors, services
from .models import Photo
from .serializers import (
    PhotoBulkSerializer,
    PhotoCreatedSerializer,
    PhotoFavoriteSerializer,
    PhotoIdsSerializer,
    PhotoListQuerySerializer,
    PhotoPageSerializer,
    PhotoSerializer,
    PhotoUploadSerializer,
)

# Multipart framing around the file; anything bigger than the limit plus this cannot be a valid upload.
_MULTIPART_OVERHEAD = 64 * 1024
_IMMUTABLE = "private, max-age=31536000, immutable"


def serve_photo_file(
    request,
    photo: Photo,
    relative: str,
    content_type: str,
    variant: str,
    *,
    cache_control: str = _IMMUTABLE,
    open_file: Callable[[BinaryIO], BinaryIO] | None = None,
    download_name: str | None = None,
) -> HttpResponseBase:
    """Send one of a photo's files with validators for conditional GET (files never change once written).

    `open_file`, if given, is called only when the body is sent (not for a 304), with the stored file open for
    reading; it returns a cleaned copy to send instead of the file itself, or raises to refuse. An original is
    offered under `download_name`, or else under the name it was uploaded with.
    """
    if not photo.is_available:
        raise NotFound("This photo's image has not been retrieved yet.", code="not_retrieved")
    filename = (download_name or photo.filename) if variant == "original" else ""
    try:
        return media.send(
            request,
            relative,
            content_type=content_type,
            etag=f'"{photo.checksum[:32]}-{variant}"',
            last_modified=int(photo.created_at.timestamp()),
            cache_control=cache_control,
            open_file=open_file,
            filename=filename,
        )
    except FileNotFoundError:
        raise NotFound("This photo's file is missing from the photo store.", code="file_missing") from None


def serve_photo_variant(request, photo: Photo, variant: str) -> HttpResponseBase:
    """A photo's `original`, `thumbnail` (300 px WebP) or `display` (1600 px WebP) file, for its owner."""
    if variant == "thumbnail":
        return serve_photo_file(request, photo, photo.local_thumbnail_path, "image/webp", variant)
    if variant == "display":
        return serve_photo_file(request, photo, services.photo_display_rendition(photo=photo), "image/webp", variant)
    return serve_photo_file(request, photo, photo.local_storage_path, photo.mime_type, "original")


# Named at the top of an Accept header, these keep `GET /api/photos/{id}` the JSON it always was.
_NOT_IMAGE = {("application", "json"), ("text", "html"), ("application", "xhtml+xml")}


def asks_for_image(request) -> bool:
    """Whether the request's Accept header prefers an image: its most preferred types (highest q) name an image
    type and neither JSON nor a page. `*/*` is no preference, so `image/webp,*/*` (an `<img>`) is an image, and a
    browser's page load (`text/html,...,image/avif,image/webp,...`) or `*/*` alone is not."""
    accepted = request.accepted_types
    if not accepted:
        return False
    first = [media for media in accepted if media.quality == accepted[0].quality]
    return any(media.main_type == "image" for media in first) and not any(
        (media.main_type, media.sub_type) in _NOT_IMAGE for media in first
    )


class FileAnswers(APIView):
    """For views that answer with files. DRF's negotiation knows only the JSON renderer, so it refused
    `Accept: image/png` (406) before the view ran; such a view's errors are still JSON."""

    def answers_file(self, request: Request) -> bool:
        return request.method in ("GET", "HEAD")

    def perform_content_negotiation(self, request: Request, force: bool = False):
        return super().perform_content_negotiation(request, force=force or self.answers_file(request))


class PhotoViewSet(FileAnswers, viewsets.GenericViewSet):
    serializer_class = PhotoSerializer
    queryset = Photo.objects.none()
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    @extend_schema(parameters=[PhotoListQuerySerializer], responses=PhotoPageSerializer)
    def list(self, request: Request) -> Response:
        query = PhotoListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.photo_list(owner=request.user, **query.validated_data)
        return Response(PhotoPageSerializer(page).data)

    @extend_schema(
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoCreatedSerializer, 400: OpenApiResponse(description="Not an acceptable image")},
    )
    def create(self, request: Request) -> Response:
        # Refuse oversized bodies before reading them into a temporary file.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.MAX_UPLOAD_SIZE + _MULTIPART_OVERHEAD:
            raise TooLarge(
                f"The upload is larger than the {settings.MAX_UPLOAD_SIZE // (1024 * 1024)} MB limit.",
                details={"max_upload_size": settings.MAX_UPLOAD_SIZE},
            )
        form = PhotoUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        created = services.photo_create(
            owner=signed_in(request.user),
            file=upload,
            filename=upload.name,
            size=upload.size,
            image_category=form.validated_data["image_category"],
        )
        body = PhotoCreatedSerializer(created.photo, context={"duplicate_of": created.duplicate_of}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={200: PhotoSerializer, (200, "image/*"): OpenApiTypes.BINARY},
        description="The photo's JSON; its original file when the Accept header prefers an image (`image/*`).",
    )
    def retrieve(self, request: Request, pk: str) -> HttpResponseBase:
        photo = selectors.photo_get(photo_id=pk, owner=request.user, include_deleted=True)
        response = (
            serve_photo_variant(request, photo, "original")
            if asks_for_image(request)
            else Response(PhotoSerializer(photo).data)
        )
        # One URL, two answers: caches must keep them apart.
        patch_vary_headers(response, ["Accept"])
        return response

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.photo_delete(photo_id=pk, owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=PhotoSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        return Response(PhotoSerializer(services.photo_restore(photo_id=pk, owner=request.user)).data)

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str) -> HttpResponseBase:
        return self._serve(request, pk, "original")

    @extend_schema(responses={(200, "image/webp"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: str) -> HttpResponseBase:
        return self._serve(request, pk, "thumbnail")

    @extend_schema(responses={(200, "image/webp"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def display(self, request: Request, pk: str) -> HttpResponseBase:
        return self._serve(request, pk, "display")

    def answers_file(self, request: Request) -> bool:
        return self.action in ("file", "thumbnail", "display") or (
            self.action == "retrieve" and asks_for_image(request)
        )

    def _serve(self, request: Request, pk: str, variant: str) -> HttpResponseBase:
        photo = selectors.photo_get(photo_id=pk, owner=request.user, include_deleted=True)
        return serve_photo_variant(request, photo, variant)

    @extend_schema(request=PhotoFavoriteSerializer, responses=PhotoSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Mark the photo a favourite or not (the one field a client changes)."""
        form = PhotoFavoriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        photo = selectors.photo_get(photo_id=pk, owner=request.user, include_deleted=True)
        favorite = form.validated_data["is_favorite"]
        action = services.BulkAction.FAVORITE if favorite else services.BulkAction.UNFAVORITE
        services.photo_bulk_update(owner=request.user, photo_ids=[photo.pk], action=action)
        photo.is_favorite = favorite
        return Response(PhotoSerializer(photo).data)

    @extend_schema(
        request=PhotoBulkSerializer,
        responses=inline_serializer("PhotosChanged", {"changed": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        """Trash, restore, favourite or unfavourite many photos; all must be yours, or nothing changes."""
        form = PhotoBulkSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        changed = services.photo_bulk_update(
            owner=request.user,
            photo_ids=form.validated_data["photo_ids"],
            action=services.BulkAction(form.validated_data["action"]),
        )
        return Response({"changed": changed})

    @extend_schema(
        request={"application/json": PhotoIdsSerializer, "application/x-www-form-urlencoded": PhotoIdsSerializer},
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    @action(detail=False, methods=["post"])
    def download(self, request: Request) -> HttpResponseBase:
        """The originals of the photos as one ZIP, streamed as it is made. Every photo is checked first: an
        unknown one (or one not downloaded from InvokeAI yet) is a 400 naming it, and nothing is sent."""
        form = PhotoIdsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        photos = selectors.photos_for_download(owner=request.user, photo_ids=form.validated_data["photo_ids"])
        response = StreamingHttpResponse(archive.zip_stream(photos), content_type="application/zip")
        name = f"photos-{timezone.localtime():%Y-%m-%d-%H%M%S}.zip"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


# The spec's thumbnail path, beside the app's `/api/photos/{id}/thumbnail`.
urlpatterns = [
    re_path(
        rf"^photos/thumbnail/(?P<pk>{PhotoViewSet.lookup_value_regex})/?$",
        PhotoViewSet.as_view({"get": "thumbnail"}),
        name="photo-thumbnail-alias",
    ),
]
