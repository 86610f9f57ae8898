"""Settings, read from the environment (and a `.env` file if present), with defaults that work on one machine.

Every variable is documented in `.env.example`.
"""

import contextlib
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    # Real environment variables win over the file (read_env only sets what is missing).
    env.read_env(BASE_DIR / ".env")


def _path_from_env(name: str, default: str) -> Path:
    path = Path(env.str(name, default=default)).expanduser()
    return (path if path.is_absolute() else BASE_DIR / path).resolve()


# DATA_DIR holds the database, the secret key and people's photos: nothing this process writes (there or
# anywhere) is readable by other accounts on the machine, and DATA_DIR itself is made private.
os.umask(0o077)
DATA_DIR = _path_from_env("DATA_DIR", "data")
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
with contextlib.suppress(PermissionError):  # a directory of another account's; the system check says so
    DATA_DIR.chmod(0o700)
PHOTOS_DIR = DATA_DIR / "photos"


def _secret_key() -> str:
    """Use SECRET_KEY, or a key generated once and kept in DATA_DIR so sessions survive restarts."""
    if key := env.str("SECRET_KEY", default=""):
        return key
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        # Written aside and linked into place: the web server and the worker may start together, and
        # link() fails for the second one, so both end up reading the same complete key.
        draft = DATA_DIR / f".secret_key.{os.getpid()}"
        draft.write_text(secrets.token_urlsafe(50), encoding="ascii")
        draft.chmod(0o600)
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return key_file.read_text(encoding="ascii").strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORT = env.int("PORT", default=8000)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "template_partials",
    "django_q",
    "gallery_project",
    "photos",
    "albums",
    "generation",
    "workflows",
    "backends",
    "worker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Signed photo URLs, answered like static files: before sessions, users and the database (photos/media.py).
    "photos.media.SignedMediaMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "gallery_project.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "gallery_project.errors.AppErrorMiddleware",
    # Last, as django-axes asks: it turns a login refused for too many failures into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gallery_project.urls"
WSGI_APPLICATION = "gallery_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backends.context_processors.backend_badge",
                "worker.context_processors.worker_health",
            ],
        },
    },
]

# https://docs.djangoproject.com/en/5.2/ref/databases/
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the django-q2 worker write concurrently: WAL lets readers run beside a writer,
    # IMMEDIATE transactions take the write lock up front instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "gallery_project.accounts.LoginLimitsBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "photos:gallery"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files browsers ask for at the site's root (favicon.ico), served there by WhiteNoise before any login check.
WHITENOISE_ROOT = BASE_DIR / "public"
# --- Photo files: on the local disk (DATA_DIR/photos) unless a bucket is named ---
# django-storages' own variable names; with AWS_STORAGE_BUCKET_NAME set, originals, renditions, generated images
# and previews live in that S3-compatible bucket (README: "Photos in S3-compatible storage").
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
# Seconds one request to the bucket may wait to connect, and for each answer; a stalled bucket then fails the
# upload with a clear error (after botocore's retries) instead of holding the request.
S3_TIMEOUT = env.float("S3_TIMEOUT", default=20)


def media_storage(
    bucket: str = "",
    *,
    location: Path = PHOTOS_DIR,
    endpoint_url: str | None = AWS_S3_ENDPOINT_URL,
    region: str | None = AWS_S3_REGION_NAME,
    access_key: str | None = AWS_ACCESS_KEY_ID,
    secret_key: str | None = AWS_SECRET_ACCESS_KEY,
    timeout: float = S3_TIMEOUT,
) -> dict:
    """The STORAGES entry for photo files: the bucket's, or the private photo directory's."""
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": location, "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
        }
    from botocore.config import Config

    return {
        "BACKEND": "photos.s3.PhotoS3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "access_key": access_key,
            "secret_key": secret_key,
            # Names come from ids: an existing key is the same file written again, never another one's.
            "file_overwrite": True,
            # A file read whole (to decode or clean it) spills to a temporary file beyond this.
            "max_memory_size": 8 * 1024 * 1024,
            "client_config": Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        },
    }


def media_image_sources(bucket: str, endpoint_url: str | None) -> list[str]:
    """Where pages may load images from: the site, and the bucket, which signed thumbnail URLs redirect to."""
    if not bucket:
        return [SELF]
    if not endpoint_url:
        return [SELF, "https://*.amazonaws.com"]
    parts = urlsplit(endpoint_url)
    return [SELF, f"{parts.scheme}://{parts.netloc}"]


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "media": media_storage(AWS_STORAGE_BUCKET_NAME),
}
# --- Photo files ---
# Seconds a signed thumbnail or lightbox URL works at least (at most twice this); pages reloaded within it mint
# the same URLs, which browsers then answer from their cache.
SIGNED_URL_TTL = env.int("SIGNED_URL_TTL", default=24 * 60 * 60)
# Who sends photo files: "" the app (gunicorn's sendfile), "x-accel" a front proxy told by X-Accel-Redirect
# (nginx, Caddy), "x-sendfile" one told by X-Sendfile (Apache mod_xsendfile, lighttpd).
SENDFILE = env.str("SENDFILE", default="")
# With SENDFILE=x-accel: the proxy's internal location that maps to DATA_DIR/photos/.
SENDFILE_ACCEL_PREFIX = env.str("SENDFILE_ACCEL_PREFIX", default="/_photos/")
# Uploads above this stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# --- Behind HTTPS (HTTPS=true): cookies only over HTTPS; the rest is opt-in because it can lock a site out ---
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
# Browsers then refuse plain HTTP to this host for that many seconds: set it once HTTPS works.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets this header itself: anyone else could claim HTTPS with it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# https://django-csp.readthedocs.io/en/latest/configuration.html
# Scripts, styles and everything else only from this site: no inline scripts, event handlers or style
# attributes anywhere (htmx is told not to inject its indicator styles, see base.html). The API docs page
# widens it a little for Swagger UI (gallery_project/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": media_image_sources(AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL),
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Powerful browser features the app never uses stay off, for its pages and anything they might embed. The
# clipboard stays on for this site: the share dialog's Copy button writes the link to it.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in [
        "accelerometer",
        "bluetooth",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
        "xr-spatial-tracking",
    ]
} | {"clipboard-write": ["self"], "fullscreen": ["self"]}

# --- Product limits (names from the spec) ---
MAX_UPLOAD_SIZE = env.int("MAX_UPLOAD_SIZE", default=20 * 1024 * 1024)
MAX_BATCH_SIZE = env.int("MAX_BATCH_SIZE", default=10)
# Largest generated image, width x height in pixels, for every model base. Unset: 1024x1024 for SD 1.x and 2.x,
# 2048x2048 for SDXL and FLUX (generation.models_cache); InvokeAI's memory use grows with the image.
MAX_IMAGE_PIXELS = env.int("MAX_IMAGE_PIXELS", default=None)
RETRIEVAL_MAX_ATTEMPTS = env.int("RETRIEVAL_MAX_ATTEMPTS", default=5)
# Seconds before the first retry of a failed download; each further retry waits twice as long.
RETRIEVAL_RETRY_BACKOFF = env.int("RETRIEVAL_RETRY_BACKOFF", default=30)
TRASH_DAYS = env.int("TRASH_DAYS", default=30)
THUMBNAIL_SIZE = 300
DISPLAY_SIZE = 1600
# Memory every image decode on this machine may hold at once (web processes and threads, worker, imports
# together), in bytes; an image needing more alone is refused (413). The costliest accepted image, an 8192 px
# WebP, needs about 1.2 GB; a 16-bit 8192 px PNG about 0.3 GB; a camera JPEG about 0.05 GB.
IMAGE_DECODE_MEMORY = env.int("IMAGE_DECODE_MEMORY", default=1280 * 1024 * 1024)
# Seconds a decode waits for its share of IMAGE_DECODE_MEMORY before answering 503 "busy, try again".
IMAGE_DECODE_WAIT = env.float("IMAGE_DECODE_WAIT", default=60)

# --- Share links ---
# Wrong passwords allowed in each window, then 429 until it ends: per link from one client (an IPv4 address or
# an IPv6 /64), per client over all links, and per link from all clients together (a backstop against guessing
# from many addresses; a single client never reaches it).
SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 10
SHARE_PASSWORD_FAILURES_PER_CLIENT = 20
SHARE_PASSWORD_FAILURES_PER_LINK = 100
SHARE_PASSWORD_WINDOW_SECONDS = 15 * 60
# Once a link's last view or download is used, the browsers that opened it may keep loading that page's
# images and lightbox for this long; every other request for the link answers 404.
SHARE_GRACE_SECONDS = 60 * 60
# Reverse proxies whose X-Forwarded-For names the client (gunicorn trusts the same list, see the Procfile).
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1"])

# --- Logins (django-axes): the login page, the admin's and POST /api/auth/token/ ---
# After this many wrong passwords for one username from one address, that pair is refused until no failure
# has come from it for the cool-off. Other addresses are not affected: an attacker cannot lock the owner out.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "gallery_project.clients.client_address"
AXES_LOCKOUT_CALLABLE = "gallery_project.views.login_locked_out"
# No banner on every manage.py command; failures and lockouts are still logged with username and address.
AXES_VERBOSE = False

# --- API tokens (django-rest-knox): only a hash of each is stored ---
# Days a token lives; each use extends it (at most once a minute), so only tokens left unused expire.
# 0: tokens never expire.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS) if API_TOKEN_TTL_DAYS else None,
    "AUTO_REFRESH": True,
}

# --- InvokeAI and RunPod ---
INVOKEAI_LOCAL_URL = env.str("INVOKEAI_LOCAL_URL", default="http://localhost:9090")
INVOKEAI_CONNECTION_TIMEOUT = env.float("INVOKEAI_CONNECTION_TIMEOUT", default=10)
INVOKEAI_READ_TIMEOUT = env.float("INVOKEAI_READ_TIMEOUT", default=30)
# The longest one request to InvokeAI may take, its answer (and a GET's retries) included: a server that sends
# a byte now and then never trips the read timeout.
INVOKEAI_TOTAL_TIMEOUT = env.float("INVOKEAI_TOTAL_TIMEOUT", default=120)
# The largest generated image downloaded: four times a 2048x2048 RGBA PNG stored without compression (16 MiB),
# the largest a step can make; a bigger answer is refused, not held in a worker's memory.
INVOKEAI_MAX_IMAGE_BYTES = env.int("INVOKEAI_MAX_IMAGE_BYTES", default=64 * 1024 * 1024)
# Link-local (169.254.x, fe80::) and cloud metadata addresses are refused as InvokeAI URLs unless this is on
# (an InvokeAI on a direct cable with a self-assigned address). Private ranges (192.168.x, 10.x) always work.
INVOKEAI_ALLOW_LINK_LOCAL = env.bool("INVOKEAI_ALLOW_LINK_LOCAL", default=False)
# Only for an InvokeAI in multiuser mode (6.12+); single-user InvokeAI needs no login.
INVOKEAI_EMAIL = env.str("INVOKEAI_EMAIL", default="")
INVOKEAI_PASSWORD = env.str("INVOKEAI_PASSWORD", default="")
# Per-model settings in CyberImage's format, one variable per model (see .env.example), for the model cache.
MODEL_DEFINITIONS = {name: value for name, value in os.environ.items() if name.startswith("MODEL_")}
RUNPOD_API_KEY = env.str("RUNPOD_API_KEY", default="")
RUNPOD_POD_TYPE = env.str("RUNPOD_POD_TYPE", default="NVIDIA GeForce RTX 4090")
RUNPOD_IDLE_TIMEOUT = env.int("RUNPOD_IDLE_TIMEOUT", default=30)
# Where a pod's InvokeAI answers; {pod_id} and {port} are filled in. Pointed at a local InvokeAI (with a fake
# RunPod at RUNPOD_API_BASE_URL, which the runpod SDK reads itself) it runs the whole pod lifecycle on one machine.
RUNPOD_PROXY_URL_TEMPLATE = env.str("RUNPOD_PROXY_URL_TEMPLATE", default="https://{pod_id}-{port}.proxy.runpod.net")
# Minutes a new pod may take to answer as InvokeAI before it is stopped as failed (image pull + first setup).
RUNPOD_START_TIMEOUT = env.int("RUNPOD_START_TIMEOUT", default=20)
# Minutes without a ping from the app (sent every minute while a pod starts or is ready) after which the pod's
# own watchdog stops it: the guarantee when this machine is off (backends/pods/deadman.py).
RUNPOD_DEADMAN_MINUTES = env.int("RUNPOD_DEADMAN_MINUTES", default=20)
# Pods this app creates are named "<prefix>-<session id>"; pods with the prefix that the app does not know as
# running are stopped as orphans, so two installations sharing one RunPod account need different prefixes.
RUNPOD_POD_PREFIX = env.str("RUNPOD_POD_PREFIX", default="photo-studio")

# --- API ---
REST_FRAMEWORK = {
    # Token first, so an unauthenticated API call answers 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "gallery_project.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "gallery_project.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Photo Studio API",
    "DESCRIPTION": "Gallery, albums, share links, generation studio and InvokeAI/RunPod backends.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["generation.cyberimage_api.schema_endpoints"],
}

# --- Background work (django-q2) ---
# https://django-q2.readthedocs.io/en/master/configure.html
# The defaults are unsafe here: max_attempts=0 retries forever, timeout=None lets a hung task block a worker.
# retry must exceed timeout, or a slow task is handed to a second worker while the first still runs it.
# The broker: the database by default (nothing to set up); with REDIS_URL, Redis, so that workers on several
# hosts share one queue. Installations (or test runs) sharing one Redis need different Q_CLUSTER_NAMEs: the
# name is the prefix of every key django-q2 keeps there.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="gallery"),
    **({"redis": REDIS_URL} if REDIS_URL else {"orm": "default"}),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 600,
    "retry": 720,
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 500,
    "poll": 0.5,
    "label": "Background tasks",
}
# The worker's heartbeat runs every minute; older than this (seconds), every page and the API show an alert,
# `manage.py health` fails and the supervisor (`manage.py run_worker`) restarts the cluster. Also how long a
# worker that has just started may take to send its first one.
WORKER_HEARTBEAT_STALE_AFTER = env.int("WORKER_HEARTBEAT_STALE_AFTER", default=180)
# Seconds between the supervisor's checks of the cluster's processes and heartbeat.
WORKER_SUPERVISOR_INTERVAL = env.float("WORKER_SUPERVISOR_INTERVAL", default=10)

# Every handler redacts share tokens (gallery_project/logs.py). Django's own defaults give the "django" and
# "django.server" loggers handlers of their own, without that filter: theirs are replaced by this one.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"redact_share_tokens": {"()": "gallery_project.logs.RedactShareTokens"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_share_tokens"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # Failures and lockouts are warnings; below that django-axes reports every routine clean-up.
        "axes": {"level": "WARNING"},
    },
}
