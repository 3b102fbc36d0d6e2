"""OpenAPI 3.1 description of what the emulator serves.

Why hand-written: the document is the emulator's statement of the wire
contract (``/tmp/crust_spec.md``), readable by people and by tooling
(``GET /openapi.json``); generating it from handlers would describe the
implementation instead of the contract. Keep it in step with ``app.py``.
"""

from __future__ import annotations

import copy
from typing import Any

from crust_assets.emulator.synth import FIELDS

_STATUS = ["pending", "processing", "completed", "failed"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _xml(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/xml": {"schema": _ref("S3Error")}},
    }


_EMAIL = {
    "type": "object",
    "required": ["email", "status"],
    "properties": {
        "email": {"type": "string"},
        "status": {"type": "string", "enum": ["deliverable", "catch_all", "invalid", "unknown"]},
    },
}

_PERSONAL_CONTACT_INFO = {
    "type": "object",
    "description": "Only the requested sub-fields are present.",
    "properties": {
        "personal_emails": {"type": "array", "items": _ref("Email")},
        "phone_numbers": {
            "type": "array",
            "items": {"type": "string", "description": "E.164, e.g. +14155550123"},
        },
    },
}

_CONTACT_DATA = {
    "type": "object",
    "description": "Only requested fields appear; nothing found = empty lists.",
    "properties": {
        "business_email": {"type": "array", "items": _ref("Email")},
        "personal_contact_info": _ref("PersonalContactInfo"),
    },
}

_BATCH_STATUS = {
    "type": "object",
    "required": [
        "batch_id",
        "status",
        "entity",
        "action",
        "identifier_count",
        "result_count",
        "entities_requested",
        "entities_fulfilled",
        "created_at",
        "completed_at",
        "download_url",
        "download_urls",
        "error_message",
    ],
    "properties": {
        "batch_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": _STATUS},
        "entity": {"type": "string", "const": "person"},
        "action": {"type": "string", "const": "contact_enrich"},
        "identifier_count": {"type": "integer"},
        "result_count": {
            "type": "integer",
            "description": "Records in the result files; 0 when nothing was found for any"
            " URL (then download_url points to an object that does not exist).",
        },
        "entities_requested": {"type": "integer"},
        "entities_fulfilled": {
            "type": "integer",
            "description": "Records with at least one value.",
        },
        "created_at": {"type": "string", "format": "date-time"},
        "completed_at": {"type": ["string", "null"], "format": "date-time"},
        "download_url": {
            "type": ["string", "null"],
            "format": "uri",
            "description": "Pre-signed URL of part-000 (only when completed); signed afresh"
            " on every GET.",
        },
        "download_urls": {
            "type": ["array", "null"],
            "items": {"type": "string", "format": "uri"},
            "description": "Pre-signed URLs of every part, in order (only when completed).",
        },
        "error_message": {"type": ["string", "null"], "description": "Only when failed."},
    },
}

_SUBMIT_REQUEST = {
    "type": "object",
    "required": ["professional_network_profile_urls", "fields"],
    "properties": {
        "professional_network_profile_urls": {
            "description": "1..300 profile URLs (https://www.linkedin.com/in/<slug>), as a"
            " list or one comma-separated string.",
            "oneOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 300},
                {"type": "string"},
            ],
        },
        "fields": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(FIELDS)},
        },
        "webhook_url": {
            "type": "string",
            "format": "uri",
            "description": "POSTed the status document (without download URLs) when the job"
            " ends; a few retries.",
        },
        "verified": {"type": "boolean", "description": "Accepted; no effect in the emulator."},
        "chunk_size": {"type": "integer", "description": "Accepted and ignored."},
    },
}

_SUBMIT_RESPONSE = {
    "type": "object",
    "required": [
        "batch_id",
        "status",
        "entity",
        "action",
        "identifier_count",
        "entities_requested",
        "status_url",
    ],
    "properties": {
        "batch_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "const": "pending"},
        "entity": {"type": "string", "const": "person"},
        "action": {"type": "string", "const": "contact_enrich"},
        "identifier_count": {"type": "integer"},
        "entities_requested": {"type": "integer"},
        "status_url": {"type": "string", "examples": ["/batch/<batch_id>"]},
    },
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "metadata"],
            "properties": {
                "type": {
                    "type": "string",
                    "examples": [
                        "invalid_request_error",
                        "too_many_active_jobs",
                        "insufficient_credits",
                        "rate_limit_exceeded",
                    ],
                },
                "message": {"type": "string"},
                "metadata": {
                    "type": "object",
                    "description": "e.g. available_fields, invalid_identifiers,"
                    " max_identifiers, active_jobs, max_active_jobs, balance",
                },
            },
        }
    },
}

_RESULT_RECORD = {
    "description": "One line of a result part (gzipped JSONL): the envelope form by default,"
    " the flat form while the flat_records fault is set.",
    "oneOf": [
        {
            "type": "object",
            "title": "Envelope",
            "required": ["original_identifier", "internal_id", "data"],
            "properties": {
                "original_identifier": {"type": "string"},
                "internal_id": {"type": ["integer", "null"]},
                "data": _ref("ContactData"),
            },
        },
        {
            "type": "object",
            "title": "Flat",
            "required": ["professional_network_url", "person_id"],
            "properties": {
                "professional_network_url": {"type": "string"},
                "person_id": {"type": ["integer", "null"]},
                "business_email": {"type": "array", "items": _ref("Email")},
                "personal_contact_info": _ref("PersonalContactInfo"),
            },
        },
    ],
}

_ADMIN_OBJECT = {"type": "object", "additionalProperties": True}
# Admin endpoints: open when the emulator accepts any key, the fixed key when it has one.
_ADMIN_SECURITY: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Crustdata batch contact enrich (local emulator)",
        "version": "2025-11-01",
        "description": "Local emulator of the Crustdata batch contact-enrich API, with"
        " pre-signed result downloads and an /_emulator admin API for faults, clock, billing"
        " and a submissions log. Synthetic, deterministic data.",
    },
    "servers": [{"url": "http://127.0.0.1:8711"}],
    "security": [{"bearerAuth": []}],
    "paths": {
        "/batch/person/contact/enrich": {
            "post": {
                "operationId": "submitBatchContactEnrich",
                "summary": "Submit a batch contact-enrich job",
                "parameters": [
                    {
                        "name": "x-api-version",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "const": "2025-11-01"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SubmitRequest")}},
                },
                "responses": {
                    "200": _json(_ref("SubmitResponse"), "Job accepted."),
                    "400": _json(
                        {"oneOf": [_ref("Error"), _ref("Message")]},
                        "Missing/unsupported x-api-version, no URLs, more than 300 URLs,"
                        " a non-profile URL, or an invalid field (metadata.available_fields).",
                    ),
                    "401": _json(_ref("Message"), "Missing or invalid API key."),
                    "402": _json(_ref("Error"), "Insufficient credits (balance <= 0)."),
                    "403": _json(
                        _ref("Error"),
                        "Insufficient credits, when so configured; or permission_denied"
                        " (a plan without contact access).",
                    ),
                    "429": _json(
                        _ref("Error"),
                        "5 active jobs (too_many_active_jobs, no rate-limit headers), or a"
                        " rate limit (x-ratelimit-* and Retry-After headers).",
                    ),
                    "500": _json(_ref("Message"), "Internal server error."),
                },
            }
        },
        "/batch": {
            "get": {
                "operationId": "listBatches",
                "summary": "List this key's jobs, most recent first",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": _STATUS},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(_ref("BatchList"), "A page of jobs."),
                    "400": _json(_ref("Error"), "Bad limit, status or cursor."),
                    "401": _json(_ref("Message"), "Missing or invalid API key."),
                },
            }
        },
        "/batch/{batch_id}": {
            "get": {
                "operationId": "getBatch",
                "summary": "Status of one job (fresh pre-signed URLs on every call)",
                "parameters": [
                    {
                        "name": "batch_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("BatchStatus"), "The job."),
                    "401": _json(_ref("Message"), "Missing or invalid API key."),
                    "404": _json(_ref("Message"), "Batch not found (or another key's)."),
                },
            }
        },
        "/_files/{batch_id}/{part}": {
            "get": {
                "operationId": "downloadResultPart",
                "summary": "Pre-signed result download (object-store style)",
                "description": "Send NO authorization header. Served as"
                " application/octet-stream gzip bytes WITHOUT Content-Encoding.",
                "security": [],
                "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                    for n in ("batch_id", "part")
                ]
                + [
                    {"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                    for n in ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature")
                ],
                "responses": {
                    "200": {
                        "description": "Gzipped JSONL, one ResultRecord per line.",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "contentMediaType": "application/gzip"}
                            }
                        },
                    },
                    "400": _xml("InvalidArgument: an authorization header was sent."),
                    "403": _xml("AccessDenied (expired) or SignatureDoesNotMatch."),
                    "404": _xml("NoSuchKey (e.g. a result_count 0 job's file)."),
                },
            }
        },
        "/_emulator/health": {
            "get": {
                "tags": ["emulator-admin"],
                "security": [],
                "responses": {"200": _json({"const": {"ok": True}}, "Up.")},
            }
        },
        "/_emulator/submissions": {
            "get": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "summary": "Every accepted submit, oldest first (batch_id, created_at,"
                " identifier_count, fields, urls_sha256, urls, status, credits_billed, ...)",
                "responses": {"200": _json(_ADMIN_OBJECT, "Submissions log.")},
            }
        },
        "/_emulator/billing": {
            "get": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "responses": {"200": _json(_ref("Billing"), "Credits used and balance.")},
            },
            "post": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["balance"],
                                "properties": {"balance": {"type": "integer"}},
                            }
                        }
                    }
                },
                "responses": {"200": _json(_ref("Billing"), "New balance.")},
            },
        },
        "/_emulator/faults": {
            "get": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "responses": {"200": _json(_ADMIN_OBJECT, "Current faults.")},
            },
            "patch": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "summary": "Change some faults (counts are consumed as they fire)",
                "requestBody": {"content": {"application/json": {"schema": _ADMIN_OBJECT}}},
                "responses": {
                    "200": _json(_ADMIN_OBJECT, "Faults after the change."),
                    "400": _json(_ref("Error"), "Unknown fault or bad value."),
                },
            },
            "delete": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "summary": "All faults off",
                "responses": {"200": _json(_ADMIN_OBJECT, "Faults after the reset.")},
            },
        },
        "/_emulator/config": {
            "get": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "responses": {"200": _json(_ADMIN_OBJECT, "Current settings.")},
            },
            "patch": {
                "tags": ["emulator-admin"],
                "security": _ADMIN_SECURITY,
                "summary": "Change pending_seconds, processing_seconds, part_size,"
                " url_expiry_seconds or insufficient_credits_status (new jobs / new URLs)",
                "requestBody": {"content": {"application/json": {"schema": _ADMIN_OBJECT}}},
                "responses": {
                    "200": _json(_ADMIN_OBJECT, "Settings after the change."),
                    "400": _json(_ref("Error"), "Unknown setting or bad value."),
                },
            },
        },
    },
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "SubmitRequest": _SUBMIT_REQUEST,
            "SubmitResponse": _SUBMIT_RESPONSE,
            "BatchStatus": _BATCH_STATUS,
            "BatchList": {
                "type": "object",
                "required": ["jobs", "next_cursor", "has_more"],
                "properties": {
                    "jobs": {"type": "array", "items": _ref("BatchStatus")},
                    "next_cursor": {"type": ["string", "null"]},
                    "has_more": {"type": "boolean"},
                },
            },
            "Email": _EMAIL,
            "PersonalContactInfo": _PERSONAL_CONTACT_INFO,
            "ContactData": _CONTACT_DATA,
            "ResultRecord": _RESULT_RECORD,
            "Error": _ERROR,
            "Message": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}},
            },
            "Billing": {
                "type": "object",
                "required": ["credits_used", "balance"],
                "properties": {
                    "credits_used": {"type": "integer"},
                    "balance": {"type": "integer"},
                },
            },
            "S3Error": {
                "type": "object",
                "xml": {"name": "Error"},
                "properties": {
                    "Code": {"type": "string"},
                    "Message": {"type": "string"},
                    "Resource": {"type": "string"},
                    "RequestId": {"type": "string"},
                },
            },
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may mutate it)."""
    return copy.deepcopy(_DOCUMENT)
