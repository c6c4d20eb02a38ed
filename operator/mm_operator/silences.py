"""Silences asked for on the ModelMonitor itself:

    kubectl annotate mm fraud modelmonitor.io/silence=2h [modelmonitor.io/silence-comment="..."]

makes the operator create an Alertmanager silence of this monitor's alerts (matchers
``namespace`` and ``modelmonitor``, the labels every alert carries) from now for that long;
``kubectl annotate mm fraud modelmonitor.io/silence-`` expires it early. A new value (``4h``)
replaces the silence with one of the new length from now.

The operator keeps nothing about it: its silences are found in Alertmanager by their
``createdBy`` and a tag in the comment naming the monitor's uid and the annotation value, so a
retried handler never creates a second one. Alertmanager is ``MM_ALERTMANAGER_URL``."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from mm_api.durations import parse_duration

SILENCE_ANNOTATION = "modelmonitor.io/silence"
COMMENT_ANNOTATION = "modelmonitor.io/silence-comment"
CREATED_BY = "model-monitor-operator"
#: Longest silence the annotation may ask for: a forgotten annotation must not mute a model
#: for good.
MAX_SILENCE = "30d"


class SilenceError(ValueError):
    """The annotation's value cannot be used; the message names the annotation."""


@dataclass(frozen=True)
class Wanted:
    value: str  # the annotation's value, as written
    seconds: float
    comment: str


def wanted(annotations: dict[str, str]) -> Wanted | None:
    """The silence the annotations ask for (None: none)."""
    value = annotations.get(SILENCE_ANNOTATION)
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise SilenceError(f"{SILENCE_ANNOTATION}: {e}") from None
    if seconds <= 0 or seconds > parse_duration(MAX_SILENCE):
        raise SilenceError(
            f"{SILENCE_ANNOTATION}: {value!r} must be longer than 0s and at most {MAX_SILENCE}"
        )
    return Wanted(value, seconds, annotations.get(COMMENT_ANNOTATION, "").strip())


def tag(uid: str, value: str) -> str:
    """What marks a silence as the one made for this monitor and annotation value."""
    return f"[{SILENCE_ANNOTATION}={value} uid={uid}]"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def silence_body(namespace: str, name: str, uid: str, w: Wanted, now: dt.datetime) -> dict:
    comment = (
        w.comment or f"silenced with kubectl annotate mm {name} {SILENCE_ANNOTATION}={w.value}"
    )
    return {
        "matchers": [
            {"name": "namespace", "value": namespace, "isRegex": False, "isEqual": True},
            {"name": "modelmonitor", "value": name, "isRegex": False, "isEqual": True},
        ],
        "startsAt": _iso(now),
        "endsAt": _iso(now + dt.timedelta(seconds=w.seconds)),
        "createdBy": CREATED_BY,
        "comment": f"{tag(uid, w.value)} {comment}",
    }


class AlertmanagerSilences:
    """The three calls of Alertmanager's v2 API this needs."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def of_monitor(self, namespace: str, name: str) -> list[dict]:
        """Unexpired silences this operator made for the monitor."""
        query = urllib.parse.urlencode(
            [("filter", f'namespace="{namespace}"'), ("filter", f'modelmonitor="{name}"')]
        )
        return [
            s
            for s in self._call("GET", f"/api/v2/silences?{query}") or []
            if s.get("createdBy") == CREATED_BY
            and (s.get("status") or {}).get("state") in ("active", "pending")
        ]

    def create(self, body: dict) -> str:
        return str(self._call("POST", "/api/v2/silences", body)["silenceID"])

    def expire(self, silence_id: str) -> None:
        self._call("DELETE", f"/api/v2/silence/{urllib.parse.quote(silence_id)}")


@dataclass(frozen=True)
class Outcome:
    """What was done, as the event to post (type, reason, message)."""

    type: str
    reason: str
    message: str


def sync(
    am: AlertmanagerSilences,
    namespace: str,
    name: str,
    uid: str,
    annotations: dict[str, str],
    now: dt.datetime | None = None,
) -> Outcome | None:
    """Make Alertmanager hold exactly the silence the annotations ask for (None: nothing
    to do). Raises :class:`SilenceError` for a bad value, ``OSError`` when Alertmanager
    cannot be reached."""
    now = now or dt.datetime.now(dt.UTC)
    w = wanted(annotations)
    ours = [s for s in am.of_monitor(namespace, name) if f"uid={uid}]" in s.get("comment", "")]
    keep = [s for s in ours if w is not None and s["comment"].startswith(tag(uid, w.value))]
    for s in ours:
        if s not in keep:
            am.expire(s["id"])
    if w is None:
        if not ours:
            return None
        return Outcome(
            "Normal",
            "SilenceExpired",
            f"expired silence {ours[0]['id']} ({SILENCE_ANNOTATION} removed)",
        )
    if keep:
        return None
    body = silence_body(namespace, name, uid, w, now)
    silence_id = am.create(body)
    return Outcome(
        "Normal",
        "Silenced",
        f"Alertmanager silence {silence_id} of this monitor's alerts until {body['endsAt']} "
        f"({SILENCE_ANNOTATION}={w.value})",
    )
