"""The schema's error answers: every operation documents the JSON errors it may give
(api.errors), so clients and schemathesis know them as part of the contract."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Field -> messages (400 only).",
        },
    },
    "required": ["detail", "code"],
}
COMMON = {
    "400": "Invalid input: `errors` names each field's problems.",
    "401": "No token, or a revoked or expired one.",
    "403": "You may see this record but not change it (or your role may not).",
    "404": "No such record within your reach.",
    "405": "This method is not allowed here.",
    "406": "The Accept header asks for something other than JSON.",
    "429": "Too many requests for this token: wait Retry-After seconds.",
}
WRITES = {
    "409": "Conflict: the record changed since you saw it (a stale stage move), or a "
    "request with this Idempotency-Key is still running.",
    "413": "The request (an upload) is over the size limit.",
    "415": "The body's media type is not accepted.",
}


def error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            codes = dict(COMMON)
            if method in ("post", "put", "patch", "delete"):
                codes.update(WRITES)
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                if code not in responses:
                    responses[code] = {"description": description, "content": reference}
                elif "content" not in responses[code]:
                    responses[code]["content"] = reference
    return result
