"""Request helpers of the scripted LLM server (tests/fake_llm.py): read a recorded chat
request's JSON body (the kind of call, system and user text, an image part) and build a
responder from rules. Re-exported by ``tests.fake_llm``: import them from there."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tests.fake_llm import Reply


def is_json_request(req: dict[str, Any]) -> bool:
    """True when a chat request asks for JSON (has ``response_format``, or its system
    prompt asks for a JSON object as ``LLM.complete_json`` does in mode ``none``)."""
    if req.get("response_format"):
        return True
    return "Reply with one JSON object only" in system_text(req)


def system_text(req: dict[str, Any]) -> str:
    """Return the concatenated text of all system messages of a chat request."""
    return "\n".join(_text(m.get("content")) for m in req.get("messages", [])
                     if m.get("role") == "system")


def last_user_text(req: dict[str, Any]) -> str:
    """Return the text of the last user message of a chat request ("" if none)."""
    for msg in reversed(req.get("messages", [])):
        if msg.get("role") == "user":
            return _text(msg.get("content"))
    return ""


def has_image(req: dict[str, Any]) -> bool:
    """True when any message carries an ``image_url`` part (a vision request)."""
    return any(isinstance(m.get("content"), list)
               and any(p.get("type") == "image_url" for p in m["content"])
               for m in req.get("messages", []))


def route(*rules: tuple[Callable[[dict[str, Any]], bool], Reply],
          default: Reply = "ok") -> Callable[[dict[str, Any]], Reply]:
    """Build a responder from ``(predicate, reply)`` rules, first match wins.

    ``reply`` may itself be a callable ``(request_json) -> reply``. Example::

        llm.responder = route((is_json_request, {"facts": []}),
                              (lambda r: "marker" in system_text(r), "hi"), default="ok")
    """
    def responder(req: dict[str, Any]) -> Reply:
        for predicate, reply in rules:
            if predicate(req):
                return reply
        return default
    return responder


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)
