"""Prompt texts and JSON schemas for the chat reply, fact extraction and reconciliation.

Kept short and example-driven: the offline default is a 1.5B-parameter model, which
follows concrete examples far better than long rules. Schemas are deliberately simple
(enums instead of numeric ranges) so llama.cpp can turn them into a grammar.
"""
from __future__ import annotations

CHAT_SYSTEM = """You are Memory Chat, a friendly assistant with a long-term memory of the user.
Today is {today}.
{knowledge}
Use what you know about the user naturally when it is relevant. When the user asks about
themselves, answer in the second person ("You are …") with only what you know; if the
answer is not in what you know, say honestly that you don't know yet. Never invent facts
about the user (no age, gender or details you were not told). Reply in the same language
as the user's last message."""

KNOWLEDGE_NONE = """You know nothing about this user yet. When they tell you about
themselves, welcome it warmly (you will remember it). If they ask about their own name,
favourite things or personal details, say you don't know yet and invite them to tell
you; do not guess and do not answer with general facts."""

THREAD_SUMMARY = "Summary of the earlier part of this conversation:\n{summary}"

EXTRACT_SYSTEM = """You extract memories about the USER from one chat turn.
Today is {today}.
Return JSON: {{"memories": [{{"text": ..., "type": ..., "importance": ..., "tags": [...]}}]}}
Rules:
- Only facts about the user (who they are, where they live, work, family, pets, likes,
  dislikes, plans, tasks, events in their life). Nothing about the assistant, nothing general.
- One short atomic fact per item, in the SAME LANGUAGE the user wrote in.
- Write relative dates as absolute ones using today's date.
- type: "profile" (name, age, home, job, family, pets), "preference" (likes, dislikes,
  favourites), "fact" (other facts, events), "task" (things to do, reminders).
- importance: 5 identity, 4 important, 3 normal, 2 minor, 1 trivia.
- Questions, greetings and small talk contain no memories: return {{"memories": []}}.
- Facts come from what the USER says; the assistant's reply is only context.
- Extract EVERY fact the user states: a sentence often holds several.{known_rules}
Examples:
User: Hi, I'm Tom. I live in Paris and I love tennis.
{{"memories": [{{"text": "Name is Tom", "type": "profile", "importance": 5, "tags": ["name"]}},
 {{"text": "Lives in Paris", "type": "profile", "importance": 4, "tags": ["location"]}},
 {{"text": "Loves tennis", "type": "preference", "importance": 3, "tags": ["sport"]}}]}}
User: 我养了一只猫，叫小蓝。
{{"memories": [{{"text": "养了一只叫小蓝的猫", "type": "profile", "importance": 4, "tags": ["宠物"]}}]}}
User: What's the weather like?
{{"memories": []}}{known_example}"""

#: Added to EXTRACT_SYSTEM only when KNOWN memories are shown (a 1.5B model shown the
#: "replaces" rule with nothing to replace invents replacements and drops facts).
EXTRACT_KNOWN_RULES = """
- If a new memory changes or contradicts one of the KNOWN memories (the user moved,
  changed job, changed their mind), set "replaces" to that known memory's number.
  Do not repeat a known memory that is still true."""
EXTRACT_KNOWN_EXAMPLE = """
KNOWN 1: Works at Google
User: I quit Google and joined a startup.
{"memories": [{"text": "Works at a startup (left Google)", "type": "profile", "importance": 4, "tags": ["work"], "replaces": 1}]}"""

EXTRACT_USER = """{known}(The assistant said, context only: {assistant})
Extract from this message of the USER:
User: {user}"""

EXTRACT_KNOWN_LINE = "KNOWN {n}: {text}"

EXTRACT_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "memories": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "type": {"type": "string",
                             "enum": ["profile", "preference", "fact", "task"]},
                    "importance": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "replaces": {"type": "integer"},
                },
                "required": ["text", "type"],
            },
        }
    },
    "required": ["memories"],
}

RECONCILE_SYSTEM = """You keep a user's memory list correct. A NEW fact about the user
arrived. Compare it with the EXISTING memories and answer with one action:
- "UPDATE" and the id of the existing memory it replaces: both are about the same thing
  (where the user lives, their job, their name, a preference) and the new fact changes it.
- "DELETE" and the id: the new fact says that existing memory is no longer true.
- "NONE": the new fact says the same as an existing memory.
- "ADD": the new fact is about something else; keep everything.
Examples:
EXISTING [a]: Likes tea
EXISTING [b]: Lives in Munich
NEW: Moved to Berlin
{"action": "UPDATE", "id": "b"}
EXISTING [a]: Has a dog named Rex
NEW: Loves hiking
{"action": "ADD", "id": "none"}"""


def reconcile_schema(labels: list[str]) -> dict:
    """The JSON schema of one reconciliation answer: ``action`` and ``id`` are enums
    (the shown labels or "none"), which a grammar-constrained small model follows far
    better than free text."""
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["UPDATE", "DELETE", "NONE", "ADD"]},
            "id": {"type": "string", "enum": list(labels) + ["none"]},
        },
        "required": ["action", "id"],
    }


SUMMARY_SYSTEM = """Summarise the conversation below in at most 120 words, in the language
it is written in. Keep names, decisions, open questions and anything the user asked to
remember. Start from the previous summary if one is given."""

#: The extraction schema without "replaces", used when no KNOWN memories are shown.
EXTRACT_SCHEMA_NO_KNOWN: dict = {
    "type": "object",
    "properties": {"memories": {"type": "array", "items": {
        "type": "object",
        "properties": {k: v for k, v in EXTRACT_SCHEMA["properties"]["memories"]["items"]["properties"].items()
                       if k != "replaces"},
        "required": ["text", "type"]}}},
    "required": ["memories"],
}
