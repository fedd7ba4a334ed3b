"""The OpenAPI 3 document of /api/v1/ (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

ROLES = "viewer < sender < editor < admin"


def _op(summary: str, role: str, ok: dict[str, Any], *, body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "description": f"Needs a token of role {role} or above ({ROLES}).",
        "security": [{"bearer": []}], "parameters": params or [],
        "responses": {status: {"description": "OK", "content": {"application/json": {"schema": ok}}},
                      "401": {"$ref": "#/components/responses/Unauthorized"},
                      "403": {"$ref": "#/components/responses/Forbidden"}},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
REPORT = {"type": "object", "properties": {
    "id": {"type": "integer"}, "total": {"type": "integer"}, "sent": {"type": "integer"},
    "pending": {"type": "integer"}, "failed": {"type": "object", "additionalProperties": {"type": "integer"}},
    "acknowledged": {"type": "integer"}, "by_locality": {"type": "object"}}}
TICKET = {"type": "object", "properties": {
    "id": {"type": "integer", "description": "the ticket number (#id)"}, "kind": {"enum": ["question", "petition"]},
    "text": {"type": "string"}, "status": {"enum": ["open", "answered", "closed"]},
    "locality": {"type": "string", "nullable": True}, "topic": {"type": "string", "nullable": True},
    "channel": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
    "answered_at": {"type": "string", "nullable": True}, "closed_at": {"type": "string", "nullable": True},
    "answer": {"type": "string", "nullable": True}}}
ERROR = {"type": "object", "properties": {"ok": {"const": False}, "error": {"type": "string"}}}


def document(base: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Loa Phường API", "version": "1",
                 "description": "Broadcasts, tickets, supervision and figures of a Loa Phường service."},
        "servers": [{"url": f"{base.rstrip('/')}/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "python -m bot web token create --name N --role R"}},
            "responses": {
                "Unauthorized": {"description": "no or unknown token",
                                 "content": {"application/json": {"schema": ERROR}}},
                "Forbidden": {"description": "the token's role is too low",
                              "content": {"application/json": {"schema": ERROR}}}},
        },
        "paths": {
            "/broadcasts": {
                "post": _op("Queue a broadcast", "sender", {"type": "object", "properties": {
                    "id": {"type": "integer"}, "recipients": {"type": "integer"},
                    "status": {"enum": ["queued", "awaiting_approval"]}}}, status="201", body={
                    "type": "object", "required": ["text", "to"], "properties": {
                        "text": {"type": "string"}, "title": {"type": "string"},
                        "to": {"enum": ["groups", "residents", "all"]}, "locality": {"type": "string"},
                        "channel": {"enum": ["telegram", "zalo"]},
                        "at": {"type": "string", "description": "ISO 8601; local time (TIMEZONE) without offset"}}}),
                "get": _op("Recent broadcasts", "viewer", {"type": "array", "items": {"type": "object"}},
                           params=[{"name": "limit", "in": "query", "schema": {"type": "integer"}}]),
            },
            "/broadcasts/{id}": {"get": _op("A broadcast's delivery report (as `broadcast show ID --json`)", "viewer",
                                            REPORT, params=[ID])},
            "/tickets": {"get": _op("Residents' questions and petitions", "viewer",
                                    {"type": "array", "items": TICKET},
                                    params=[{"name": "status", "in": "query",
                                             "schema": {"enum": ["open", "answered", "closed"]}}])},
            "/tickets/{id}/answer": {"post": _op("Answer a ticket: the resident gets it on their own channel",
                                                 "sender", {"type": "object"}, params=[ID], body={
                                                     "type": "object", "required": ["text"],
                                                     "properties": {"text": {"type": "string"}}})},
            "/supervision": {"get": _op("Supervision per locality: done / required this period, overdue, upcoming",
                                        "viewer", {"type": "object"},
                                        params=[{"name": "period", "in": "query", "schema": {"type": "string"}}])},
            "/stats": {"get": _op("The overview's figures", "viewer", {"type": "object"})},
        },
    }
