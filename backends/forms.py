"""The backend page's forms: they validate; the services act."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from . import runpod
from .models import BackendSettings
from .services import EDITABLE_FIELDS


def _safe(pattern, what: str) -> RegexValidator:
    return RegexValidator(f"^{pattern.pattern}$", f"Use only the characters RunPod requests can carry for the {what}.")


class BackendSettingsForm(forms.ModelForm):
    # The InvokeAI URLs are checked and normalised by the model's clean() (not Django's URLValidator: it refuses
    # LAN host names without a dot, "http://gpu-box:9090"), so the admin and the services check them the same.
    class Meta:
        model = BackendSettings
        fields = list(EDITABLE_FIELDS)
        widgets = {
            "local_backend_url": forms.URLInput(),
            "remote_backend_url": forms.URLInput(attrs={"placeholder": "https://invoke.example.org"}),
            "runpod_gpu_type": forms.TextInput(attrs={"list": "gpu-types"}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The environment's values show where a blank field falls back to them.
        self.fields["local_backend_url"].widget.attrs["placeholder"] = settings.INVOKEAI_LOCAL_URL
        self.fields["runpod_gpu_type"].widget.attrs["placeholder"] = settings.RUNPOD_POD_TYPE
        self.fields["idle_timeout_minutes"].widget.attrs["placeholder"] = settings.RUNPOD_IDLE_TIMEOUT
        self.fields["runpod_gpu_type"].validators.append(_safe(runpod.GPU_TYPE, "GPU type"))
        self.fields["runpod_image"].validators.append(_safe(runpod.IMAGE, "image name"))
        self.fields["runpod_volume_mount_path"].validators.append(_safe(runpod.MOUNT_PATH, "mount path"))
        self.fields["runpod_network_volume_id"].validators.append(_safe(runpod.POD_ID, "network volume id"))


class ApiKeyForm(forms.Form):
    # Write-only: the page never renders a stored key back, not even into this field.
    api_key = forms.CharField(
        label="RunPod API key",
        required=False,
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    remove = forms.BooleanField(required=False, widget=forms.HiddenInput)


class PodStartForm(forms.Form):
    gpu_type = forms.CharField(required=False, max_length=100, validators=[_safe(runpod.GPU_TYPE, "GPU type")])
    fresh = forms.BooleanField(required=False)


class BackendAddForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "Studio PC"}))
    url = forms.CharField(max_length=500, widget=forms.URLInput(attrs={"placeholder": "http://192.168.1.20:9090"}))
