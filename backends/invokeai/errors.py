"""InvokeAI's failures in the project's error vocabulary.

Each class is an `AppError`, so the API renders it as `{code, message, details}` and pages show its message.
Messages name the server and say what to do, because the person reading them runs that server.
"""

from __future__ import annotations

from gallery_project.errors import InvalidInput, Unavailable, UpstreamError


class InvokeAIError(UpstreamError):
    """InvokeAI answered, but not with something this app can use."""

    code = "invokeai_error"


class InvokeAIConnectionError(InvokeAIError, Unavailable):
    """InvokeAI did not answer (refused, unreachable, or too slow); trying again later may work."""

    status = 503
    code = "invokeai_unreachable"


class InvokeAIAddressRefused(InvokeAIConnectionError):
    """The InvokeAI URL, or an address its host resolves to, is one the app sends no requests to (see
    `transport`): link-local or cloud metadata, or not a usable URL at all."""

    code = "invokeai_address_refused"


class ModelError(InvokeAIError, InvalidInput):
    """The chosen model cannot be used: no longer installed, or of a kind the graph builders do not drive."""

    status = 400
    code = "model_unavailable"


class ModelInstallError(ModelError):
    """InvokeAI cannot install (or uninstall) this model: nothing at the source, not a model, already there..."""

    code = "model_install_failed"


class GenerationError(InvokeAIError):
    """InvokeAI refused a batch or an item of it failed."""

    code = "generation_failed"


class RetrievalError(InvokeAIError):
    """A generated image could not be fetched from InvokeAI."""

    code = "retrieval_failed"


class WorkflowError(InvalidInput):
    """A workflow that cannot be read, filled in or run as it is (its shape, a value, or a node type the server
    lacks); the message says which part and what to do."""

    code = "workflow_invalid"
