"""The backend API's shapes. Nothing here can carry the RunPod API key: no serializer has a field for it."""

from __future__ import annotations

from rest_framework import serializers

from gallery_project.pagination import limit_field, offset_field
from worker import selectors as worker_selectors

from . import costs
from .models import Backend, BackendSettings, PodSession


class PodSessionSerializer(serializers.ModelSerializer):
    """A session; for an active one, `estimated_cost` is the cost so far (context `now`)."""

    estimated_cost = serializers.SerializerMethodField()
    cost_per_image = serializers.SerializerMethodField()

    class Meta:
        model = PodSession
        fields = [
            "id",
            "pod_id",
            "name",
            "state",
            "progress",
            "message",
            "alert",
            "error_code",
            "stop_reason",
            "resumed",
            "gpu_type",
            "cloud_type",
            "cost_per_hour",
            "created_at",
            "ready_at",
            "stop_requested_at",
            "stopped_at",
            "images_generated",
            "estimated_cost",
            "cost_per_image",
        ]
        read_only_fields = fields

    def _cost(self, session: PodSession):
        if session.is_active:
            return costs.session_cost(session, now=self.context["now"])
        return session.estimated_cost

    def get_estimated_cost(self, session: PodSession) -> str:
        return str(self._cost(session))

    def get_cost_per_image(self, session: PodSession) -> str | None:
        value = costs.cost_per_image(self._cost(session), session.images_generated)
        return None if value is None else str(value)


class PodStatusSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(source="session.pk")
    pod_id = serializers.CharField(source="session.pod_id")
    state = serializers.CharField(source="session.state")
    progress = serializers.CharField(source="session.progress")
    message = serializers.CharField(source="session.message")
    alert = serializers.CharField(source="session.alert")
    error_code = serializers.CharField(source="session.error_code")
    gpu_type = serializers.CharField(source="session.gpu_type")
    cost_per_hour = serializers.DecimalField(source="session.cost_per_hour", max_digits=10, decimal_places=4)
    session_started_at = serializers.DateTimeField(source="session.created_at")
    ready_at = serializers.DateTimeField(source="session.ready_at")
    stopped_at = serializers.DateTimeField(source="session.stopped_at")
    current_cost = serializers.DecimalField(max_digits=12, decimal_places=4)
    images_generated = serializers.IntegerField(source="session.images_generated")
    cost_per_image = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    idle_minutes = serializers.FloatField(allow_null=True)
    minutes_until_auto_stop = serializers.FloatField(allow_null=True)
    auto_stop_reason = serializers.CharField()


class StorageSerializer(serializers.Serializer):
    stopped_volume_gb = serializers.IntegerField()
    stopped_volume_per_month = serializers.DecimalField(max_digits=10, decimal_places=2)
    network_volume_id = serializers.CharField()


class ApiKeyStateSerializer(serializers.Serializer):
    is_set = serializers.BooleanField()
    # DRF takes declared fields off the class, so this shadows no Field.source at run time.
    source = serializers.CharField()  # type: ignore[assignment]
    problem = serializers.CharField()


class WorkerHealthSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[
            worker_selectors.OK,
            worker_selectors.STARTING,
            worker_selectors.STALE,
            worker_selectors.NEVER,
            worker_selectors.UNSUPERVISED,
        ],
        help_text="stale: the heartbeat is older than WORKER_HEARTBEAT_STALE_AFTER; never: none ever came; "
        "unsupervised: it beats, but its supervisor is gone.",
    )
    healthy = serializers.BooleanField()
    title = serializers.CharField(help_text="Empty while healthy.")
    message = serializers.CharField(help_text="What the state means and, when unhealthy, what to do.")
    beat_at = serializers.DateTimeField(allow_null=True)
    seconds_since_beat = serializers.IntegerField(allow_null=True)
    stale_after = serializers.IntegerField()
    cluster_started_at = serializers.DateTimeField(allow_null=True)
    restarts = serializers.IntegerField(help_text="Restarts by the supervisor since it started.")
    restart_reason = serializers.CharField()


class BackendEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="backend_id", allow_null=True, help_text="Null for the InvokeAI in use.")
    kind = serializers.ChoiceField(choices=["local", "pod", "url"])
    name = serializers.CharField()
    url = serializers.CharField()
    in_use = serializers.BooleanField(
        help_text="The InvokeAI the mode chooses (local or the pod); the others are added."
    )
    enabled = serializers.BooleanField(help_text="Whether new steps may go to it.")
    connected = serializers.BooleanField()
    api_version = serializers.CharField()
    connection_error = serializers.CharField()
    queue_pending = serializers.IntegerField()
    queue_in_progress = serializers.IntegerField()
    models = serializers.IntegerField(allow_null=True, help_text="Models it listed; null before its first listing.")
    current_cost = serializers.DecimalField(
        max_digits=12, decimal_places=4, allow_null=True, help_text="A pod's cost so far; null otherwise."
    )
    checked_at = serializers.DateTimeField(allow_null=True)


class BackendSerializer(serializers.ModelSerializer):
    """An added InvokeAI backend (a remote URL), with what its last check found."""

    queue_size = serializers.IntegerField(read_only=True)
    models = serializers.SerializerMethodField()

    class Meta:
        model = Backend
        fields = [
            "id",
            "name",
            "url",
            "enabled",
            "is_connected",
            "api_version",
            "connection_error",
            "checked_at",
            "queue_pending",
            "queue_in_progress",
            "queue_size",
            "models",
            "created_at",
        ]
        read_only_fields = fields

    def get_models(self, backend: Backend) -> int | None:
        return len(backend.model_hashes) if backend.models_listed_at else None


class BackendCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=500, help_text="http(s)://host[:port][/path] of an InvokeAI.")
    enabled = serializers.BooleanField(required=False, default=True)


class BackendUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    enabled = serializers.BooleanField(required=False)


class BackendStatusSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=BackendSettings.Mode.choices)
    url = serializers.CharField()
    url_problem = serializers.CharField()
    connected = serializers.BooleanField()
    api_version = serializers.CharField()
    last_connected_at = serializers.DateTimeField(allow_null=True)
    connection_error = serializers.CharField()
    api_key = ApiKeyStateSerializer()
    pod = PodStatusSerializer(allow_null=True)
    monthly_budget = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    spent_this_month = serializers.DecimalField(max_digits=12, decimal_places=4)
    lifetime_hours = serializers.FloatField()
    lifetime_cost = serializers.DecimalField(max_digits=12, decimal_places=4)
    lifetime_images = serializers.IntegerField()
    lifetime_cost_per_image = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    storage = StorageSerializer()
    idle_timeout_minutes = serializers.IntegerField()
    max_session_hours = serializers.IntegerField()
    worker = WorkerHealthSerializer(help_text="Whether the background worker (pod checks, steps, retries) works.")
    backends = BackendEntrySerializer(
        many=True, help_text="Every InvokeAI new steps may go to: the one in use first, then the added ones."
    )


class BackendStatusBriefSerializer(serializers.Serializer):
    """The status for accounts that are not staff: whether generating can work now, not where it runs (a pod's
    URL opens its InvokeAI to anyone who has it), what it costs or how it is set up."""

    mode = serializers.ChoiceField(choices=BackendSettings.Mode.choices)
    connected = serializers.BooleanField()
    api_version = serializers.CharField()
    last_connected_at = serializers.DateTimeField(allow_null=True)
    ready = serializers.SerializerMethodField(help_text="Whether there is an InvokeAI to send new work to.")
    pod_state = serializers.SerializerMethodField(help_text="The state of the active RunPod pod, if any.")
    worker = WorkerHealthSerializer(help_text="Whether the background worker (which follows every step) works.")

    def get_ready(self, status) -> bool:
        return bool(status.url)

    def get_pod_state(self, status) -> str | None:
        return status.pod.session.state if status.pod and status.pod.session.is_active else None


class ModeSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=BackendSettings.Mode.choices)


class ModeResultSerializer(BackendStatusSerializer):
    message = serializers.CharField()


class PodStartSerializer(serializers.Serializer):
    gpu_type = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    fresh = serializers.BooleanField(
        required=False, default=False, help_text="Create a new pod instead of resuming the stopped one."
    )
    another = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Start it beside the active pod: both take steps, each with its own idle timer and longest session.",
    )


class PodSessionPageSerializer(serializers.Serializer):
    items = PodSessionSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class PageQuerySerializer(serializers.Serializer):
    limit = limit_field(maximum=200)
    offset = offset_field()
