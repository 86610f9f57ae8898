"""Log lines without share tokens.

A share link's token is the only key to it, and only its hash is stored, so the token must not be written in
full anywhere else either. It is in every `/s/<token>/...` URL: in request lines, in Referer headers (share
pages send their images' requests with a same-origin Referer), and in Django's own warnings ("Not Found:
/s/..."). Every log line, the message and any traceback, has it replaced by `<redacted>`, Django's through the
filter its LOGGING handlers carry, gunicorn's through `GunicornLogger`, which the Procfile names.
"""

from __future__ import annotations

import logging
import re

from gunicorn import glogging

# The path segment after /s/, wherever it appears: a path, a request line, a full URL in a header.
_SHARE_TOKEN = re.compile(r"/s/[^/\s?#\"'<>]+")
REDACTED = "/s/<redacted>"


def redact(text: str) -> str:
    return _SHARE_TOKEN.sub(REDACTED, text)


class RedactShareTokens(logging.Filter):
    """Rewrites a record's message (and traceback) with share tokens redacted; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Arguments that do not fit the format: the handler would print both, tokens included.
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_REDACT = RedactShareTokens()


class GunicornLogger(glogging.Logger):
    """gunicorn's logger (`--logger-class`), with share tokens redacted from its access and error logs."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        # On the loggers rather than their handlers: gunicorn replaces its handlers when it reloads.
        for log in (self.error_log, self.access_log):
            log.addFilter(_REDACT)
