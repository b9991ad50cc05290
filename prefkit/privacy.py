"""The one rule for secrets: a secret-bearing folder is 0700 and every file in it 0600, whoever created them;
a URL is recorded and shown without its userinfo and without query values that carry credentials; and a
key prefkit was given (a teacher's, an Argilla server's) is never shown, even when a server echoes it back
in an error message."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Query parameters whose values are credentials (Azure's api-key and sig, presigned URLs' tokens, ...).
SECRET_PARAMS = re.compile(r"(key|token|secret|password|passwd|pwd|sig|signature|auth|credential)", re.I)


_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"]+@")
_SECRET_QUERY = re.compile(r"([?&][^=&\s'\"]*" + SECRET_PARAMS.pattern + r"[^=&\s'\"]*=)[^&\s'\"]+", re.I)


# Keys this process was given, as registered by the code that reads them.
_KNOWN_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a key so that `redact_text` removes it wherever it turns up (short placeholders are not keys)."""
    if value and len(value) >= 8 and value != "EMPTY":
        _KNOWN_SECRETS.add(value)


def redact_text(text: str) -> str:
    """`text` (a log line, an error message, a recorded error) with every URL's userinfo and credential query
    values removed, and every registered key replaced by REDACTED."""
    text = _SECRET_QUERY.sub(r"\1REDACTED", _USERINFO.sub(r"\1", text))
    for secret in _KNOWN_SECRETS:
        text = text.replace(secret, "REDACTED")
    return text


class RedactingFilter:
    """A logging filter that passes every record through `redact_text` (libraries log request URLs)."""

    def filter(self, record) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_url(url: str | None) -> str | None:
    """`url` without `user:password@` and with credential-bearing query values replaced by REDACTED."""
    return redact_text(url) if url else url


def make_private(folder: Path) -> None:
    """`folder` 0700 and everything under it 0700 (folders) / 0600 (files), however they were created."""
    folder.chmod(0o700)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            Path(root, name).chmod(0o700)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o600)
