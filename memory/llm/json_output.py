"""How the chat-model client asks for JSON and checks it: the ``response_format`` per JSON mode, the schema described in the prompt, and the answer parsed and validated against the JSON Schema.

JSON modes (``LLM.json_mode()``): ``json_object+schema`` (llama.cpp: its grammar
constrains the output to the schema), ``json_schema`` (OpenAI structured outputs),
``json_object`` (JSON, schema described in the prompt), ``none`` (no
``response_format``; schema in the prompt).
"""
from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)


def strip_fences(text: str) -> str:
    """Return ``text`` without a surrounding Markdown code fence (```json … ```) and
    without leading/trailing whitespace; other text is returned stripped."""
    match = _FENCE.match(text)
    return (match.group(1) if match else text).strip()


def schema_skeleton(schema: dict[str, Any], depth: int = 0) -> Any:
    """Return an example instance of a JSON Schema for prompts: objects with all their
    properties, one-item arrays, ``"a|b"`` for string enums, ``"..."`` for strings, 0 for
    numbers, true for booleans. Small models copy a schema's own structure when shown
    only the schema; a filled-in shape next to it avoids that."""
    if depth > 6 or not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        return "|".join(str(v) for v in values) if values and all(
            isinstance(v, str) for v in values) else (values[0] if values else None)
    if kind == "object" or "properties" in schema:
        return {key: schema_skeleton(sub, depth + 1)
                for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_skeleton(schema.get("items") or {}, depth + 1)]
    if kind == "string":
        return "..."
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return None


def response_format(mode: str, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``response_format`` request field for JSON ``mode`` (see the module
    docstring), or None for ``none``. ``name`` labels the schema for structured
    outputs (cut to ``[a-zA-Z0-9_-]{1,64}``)."""
    if mode == "json_object+schema":
        return {"type": "json_object", "schema": schema}
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "out",
                                "schema": schema}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def json_messages(mode: str, messages: list[dict[str, Any]],
                  schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A copy of ``messages`` whose system message (a new first one if there is none)
    ends with how to answer: "one JSON object only" where the server enforces the
    schema (``json_schema``, ``json_object+schema``), else also a filled-in shape
    (:func:`schema_skeleton`) and the schema itself."""
    if mode in ("json_schema", "json_object+schema"):
        note = "Reply with one JSON object only."
    else:
        note = ("Reply with one JSON object only (no prose, no code fence), shaped like "
                f"{json.dumps(schema_skeleton(schema), ensure_ascii=False)}\n"
                "It must validate against this JSON Schema (fill in the values, do not "
                "repeat the schema): "
                + json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    out = [dict(m) for m in messages]
    for msg in out:
        if msg.get("role") == "system" and isinstance(msg.get("content"), str):
            msg["content"] = f"{msg['content']}\n\n{note}"
            return out
    return [{"role": "system", "content": note}] + out


def parse_answer(raw: str, validator: Any) -> tuple[dict[str, Any] | None, str]:
    """Parse a model's answer ``raw`` (fences stripped) and validate it with a
    ``jsonschema`` validator. Returns ``(data, "")`` when valid, else ``(None,
    problem)`` where ``problem`` completes "rejected because …" (not valid JSON, with
    line and column; or the first schema violation and where)."""
    try:
        data = json.loads(strip_fences(raw))
    except json.JSONDecodeError as exc:
        return None, f"it is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if not errors:
        return data, ""
    err = errors[0]
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return None, f"it does not match the schema at {where}: {err.message}"
