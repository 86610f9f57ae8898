"""The albums and share-links API: thin DRF views that parse, call services/selectors and render."""

from __future__ import annotations

from dataclasses import asdict

from django.urls import reverse
from django_q.tasks import async_task
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from gallery_project.permissions import signed_in
from photos.serializers import PhotoIdsSerializer

from . import selectors, services
from .models import Album, ShareLink
from .serializers import (
    AlbumCreateSerializer,
    AlbumDetailSerializer,
    AlbumMoveSerializer,
    AlbumSerializer,
    AlbumUpdateSerializer,
    BoardImportSerializer,
    BoardSendSerializer,
    ShareLinkCreatedSerializer,
    ShareLinkCreateSerializer,
    ShareLinkListQuerySerializer,
    ShareLinkSerializer,
)

UUID_PATTERN = "[0-9a-fA-F-]{32,36}"

_Added = inline_serializer("AlbumPhotosAdded", {"added": serializers.IntegerField()})
_Removed = inline_serializer("AlbumPhotosRemoved", {"removed": serializers.IntegerField()})


def _parsed(serializer_class: type[serializers.Serializer], data) -> dict:
    form = serializer_class(data=data)
    form.is_valid(raise_exception=True)
    return form.validated_data


def _album_detail(request: Request, album_id) -> dict:
    album = selectors.album_get(album_id=album_id, owner=request.user)
    photo_ids = selectors.album_photo_ids(album_id=album.pk)
    return AlbumDetailSerializer(album, context={"photo_ids": photo_ids}).data


def _share_created(request: Request, **target) -> Response:
    created = services.share_link_create(
        owner=signed_in(request.user), **target, **_parsed(ShareLinkCreateSerializer, request.data)
    )
    url = request.build_absolute_uri(reverse("albums:share", kwargs={"token": created.token}))
    body = ShareLinkCreatedSerializer(created.link, context={"url": url}).data
    return Response(body, status=status.HTTP_201_CREATED)


class AlbumViewSet(viewsets.GenericViewSet):
    serializer_class = AlbumSerializer
    queryset = Album.objects.none()
    lookup_value_regex = UUID_PATTERN

    @extend_schema(responses=AlbumSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response(AlbumSerializer(selectors.album_list(owner=request.user), many=True).data)

    @extend_schema(request=AlbumCreateSerializer, responses={201: AlbumDetailSerializer})
    def create(self, request: Request) -> Response:
        album = services.album_create(owner=signed_in(request.user), **_parsed(AlbumCreateSerializer, request.data))
        return Response(_album_detail(request, album.pk), status=status.HTTP_201_CREATED)

    @extend_schema(responses=AlbumDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_album_detail(request, pk))

    @extend_schema(request=AlbumUpdateSerializer, responses=AlbumDetailSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        changes = _parsed(AlbumUpdateSerializer, request.data)
        cover = changes.pop("cover_photo_id", ...)
        if changes:
            services.album_update(album_id=pk, owner=request.user, **changes)
        if cover is not ...:
            services.album_set_cover(album_id=pk, owner=request.user, photo_id=cover)
        return Response(_album_detail(request, pk))

    @extend_schema(request=AlbumUpdateSerializer, responses=AlbumDetailSerializer)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.album_delete(album_id=pk, owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["POST"],
        request=PhotoIdsSerializer,
        responses={200: _Added, 400: OpenApiResponse(description="Unknown or trashed photos")},
        description="Append photos to the album; photos already in it are left where they are.",
    )
    @extend_schema(methods=["DELETE"], request=PhotoIdsSerializer, responses=_Removed)
    @action(detail=True, methods=["post", "delete"])
    def photos(self, request: Request, pk: str) -> Response:
        photo_ids = _parsed(PhotoIdsSerializer, request.data)["photo_ids"]
        if request.method == "DELETE":
            removed = services.album_remove_photos(album_id=pk, owner=request.user, photo_ids=photo_ids)
            return Response({"removed": removed})
        return Response({"added": services.album_add_photos(album_id=pk, owner=request.user, photo_ids=photo_ids)})

    @extend_schema(
        request=PhotoIdsSerializer,
        responses={200: AlbumDetailSerializer, 409: OpenApiResponse(description="The album has changed")},
        description="Put the album's photos in this order; the list names each of them once.",
    )
    @action(detail=True, methods=["post"])
    def reorder(self, request: Request, pk: str) -> Response:
        photo_ids = _parsed(PhotoIdsSerializer, request.data)["photo_ids"]
        services.album_reorder(album_id=pk, owner=request.user, photo_ids=photo_ids)
        return Response(_album_detail(request, pk))

    @extend_schema(
        request=AlbumMoveSerializer,
        responses={204: None},
        description="Move photos from one album to another in one step; `none` is Uncategorized.",
    )
    @action(detail=False, methods=["post"])
    def move(self, request: Request) -> Response:
        move = _parsed(AlbumMoveSerializer, request.data)
        services.album_move_photos(
            owner=request.user,
            photo_ids=move["photo_ids"],
            source_album_id=move["from_album_id"],
            target_album_id=move["to_album_id"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ShareLinkCreateSerializer, responses={201: ShareLinkCreatedSerializer})
    @extend_schema(request=BoardImportSerializer, responses={202: OpenApiResponse(description="Import queued")})
    @action(detail=False, methods=["post"], url_path="import-boards")
    def import_boards(self, request: Request) -> Response:
        """Import InvokeAI's boards as albums, in the background (a board can hold thousands of images)."""
        form = _parsed(BoardImportSerializer, request.data)
        task_id = async_task("albums.tasks.boards_import", signed_in(request.user).pk, form["board_ids"], form["sync"])
        return Response({"task_id": task_id}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=BoardSendSerializer)
    @action(detail=False, methods=["post"], url_path="send-to-board")
    def send_selection_to_board(self, request: Request) -> Response:
        """Put photos on an InvokeAI board (an existing one, or a new one by name)."""
        form = _parsed(BoardSendSerializer, request.data)
        return Response(asdict(services.board_send(owner=request.user, **form)))

    @extend_schema(request=BoardSendSerializer)
    @action(detail=True, methods=["post"], url_path="send-to-board")
    def send_to_board(self, request: Request, pk: str) -> Response:
        """Put the album's photos on an InvokeAI board: the one given, or the album's own (made the first time)."""
        form = _parsed(BoardSendSerializer, request.data)
        form.pop("photo_ids")
        return Response(asdict(services.board_send(owner=request.user, album_id=pk, **form)))

    @action(detail=True, methods=["post"])
    def shares(self, request: Request, pk: str) -> Response:
        return _share_created(request, album_id=pk)


class PhotoShareViewSet(viewsets.GenericViewSet):
    """`POST /api/photos/{id}/shares/`, routed next to the photos API so that photos need not know albums."""

    serializer_class = ShareLinkCreatedSerializer
    queryset = ShareLink.objects.none()

    @extend_schema(request=ShareLinkCreateSerializer, responses={201: ShareLinkCreatedSerializer})
    def create(self, request: Request, photo_id: str) -> Response:
        return _share_created(request, photo_id=photo_id)


class ShareLinkViewSet(viewsets.GenericViewSet):
    serializer_class = ShareLinkSerializer
    queryset = ShareLink.objects.none()
    lookup_value_regex = UUID_PATTERN

    @extend_schema(parameters=[ShareLinkListQuerySerializer], responses=ShareLinkSerializer(many=True))
    def list(self, request: Request) -> Response:
        query = _parsed(ShareLinkListQuerySerializer, request.query_params)
        links = selectors.share_link_list(
            owner=request.user, active_only=query["active"], album_id=query["album_id"], photo_id=query["photo_id"]
        )
        return Response(ShareLinkSerializer(links, many=True).data)

    @extend_schema(responses={204: None}, description="Revoke the link: it and every URL it served answer 404.")
    def destroy(self, request: Request, pk: str) -> Response:
        services.share_link_revoke(link_id=pk, owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
