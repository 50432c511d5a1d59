"""Credentials out of what is shown: a stream URL's user info and secret-looking query values.

A camera's URL often carries a password (`rtsp://user:pass@host/...`) or a token
(`https://host/live.m3u8?token=...`). The house opens the stream with the URL as given and
shows it, everywhere else (messages, logs, tables, JSON, plots), through `redact`.
"""

from __future__ import annotations

import re

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_USER_INFO = re.compile(r"^([^:]+://)[^/?#]*@")  # up to the authority's last @
_PARAM = re.compile(r"([?&;#])([^=&;#]*)=([^&;#]*)")
_SECRET_KEY = re.compile(r"token|pass|pwd|secret|key|auth|sig|cred|session|user|login", re.IGNORECASE)
_TRAILING = ".,:;)]"  # punctuation after a URL in a sentence, not part of it
HIDDEN = "***"


def redact(text: str) -> str:
    """`text` with every URL in it shown safely: its user info (`user:password@`) becomes
    `***@` and the value of each query or fragment parameter whose name looks secret (token,
    password, key, signature, auth, user, ...) becomes `***`. Text without a URL is unchanged."""
    return _URL.sub(_redact_url, text)


def _redact_url(match: re.Match[str]) -> str:
    url = match.group(0)
    body = url.rstrip(_TRAILING)
    tail = url[len(body) :]
    body = _USER_INFO.sub(rf"\1{HIDDEN}@", body, count=1)
    return _PARAM.sub(_redact_param, body) + tail


def _redact_param(match: re.Match[str]) -> str:
    sep, key, value = match.groups()
    return f"{sep}{key}={HIDDEN}" if value and _SECRET_KEY.search(key) else match.group(0)
