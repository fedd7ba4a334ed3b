"""What Zalo POSTs to an OA's webhook: the signature check and the events read into plain values.

`X-ZEvent-Signature: mac=<hex>` where hex is the plain SHA-256 (not an HMAC) of
`app_id + raw body + timestamp + OA secret key`; the timestamp is the body's own (ms, a string).
Ids are strings. The OA's own `oa_send_*` echoes and the read/seen receipts are not for the dialogue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-ZEvent-Signature"
MEDIA = {  # user_send_* → Inbound.media_type
    "user_send_image": "photo", "user_send_gif": "photo", "user_send_sticker": "sticker",
    "user_send_file": "file", "user_send_location": "location", "user_send_audio": "voice",
    "user_send_video": "video", "user_send_link": "link", "user_send_business_card": "contact",
}


def signature(app_id: str, raw: bytes, timestamp: str, secret: str) -> str:
    digest = hashlib.sha256(app_id.encode() + raw + timestamp.encode() + secret.encode())
    return digest.hexdigest()


def verify(header: str, raw: bytes, app_id: str, secret: str) -> bool:
    """Whether `header` ("mac=<hex>") signs `raw` for this app and OA secret key (constant time)."""
    given = header.strip()
    given = given[4:] if given.lower().startswith("mac=") else given
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(body, dict):
        return False
    timestamp = str(body.get("timestamp") or "")
    expected = signature(app_id, raw, timestamp, secret)
    return hmac.compare_digest(given.lower().encode(), expected.encode())


@dataclass(frozen=True)
class Event:
    name: str
    user_id: str  # the follower concerned: the sender, or follower.id on follow / unfollow
    key: str  # what repeats of this event share (msg_id, or name:user:timestamp)
    text: str = ""
    media_type: str | None = None
    media_url: str | None = None
    msg_id: str | None = None
    timestamp: float | None = None

    @property
    def from_user(self) -> bool:
        return self.name.startswith("user_send_")


def read_event(body: dict[str, Any]) -> Event | None:
    """One webhook body → an Event; None for what the bot ignores (echoes, receipts, unknown events)."""
    name = str(body.get("event_name") or "")
    if name in ("follow", "unfollow"):
        follower = body.get("follower") or {}
        user_id = str(follower.get("id") or (body.get("sender") or {}).get("id") or "")
        if not user_id:
            raise ValueError(f"{name} without follower.id")
        return Event(name, user_id, f"{name}:{user_id}:{body.get('timestamp')}", timestamp=_seconds(body))
    if not name.startswith("user_send_"):
        return None  # oa_send_* echoes, user_seen_message, user_received_message, …
    user_id = str((body.get("sender") or {}).get("id") or "")
    message = body.get("message") or {}
    if not user_id or not isinstance(message, dict):
        raise ValueError(f"{name} without sender.id or message")
    msg_id = str(message.get("msg_id") or "") or None
    key = msg_id or f"{name}:{user_id}:{body.get('timestamp')}"
    text = message.get("text")
    text = text if isinstance(text, str) else ""
    if name == "user_send_text":
        return Event(name, user_id, key, text=text, msg_id=msg_id, timestamp=_seconds(body))
    url = None
    for attachment in message.get("attachments") or []:
        payload = attachment.get("payload") if isinstance(attachment, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("url"), str):
            url = payload["url"]
            break
    return Event(name, user_id, key, text=text, media_type=MEDIA.get(name, "unsupported"), media_url=url,
                 msg_id=msg_id, timestamp=_seconds(body))


def _seconds(body: dict[str, Any]) -> float | None:
    try:
        return int(str(body.get("timestamp"))) / 1000.0
    except ValueError:
        return None
