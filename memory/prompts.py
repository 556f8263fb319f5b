"""Prompt texts and JSON schemas for the chat reply, fact extraction and reconciliation.

Kept short and example-driven: the offline default is a 1.5B-parameter model, which
follows concrete examples far better than long rules. Schemas are deliberately simple
(enums instead of numeric ranges) so llama.cpp can turn them into a grammar.
"""
from __future__ import annotations

CHAT_SYSTEM = """You are Memory Chat, a friendly assistant with a long-term memory of the user.
Today is {today}.
{knowledge}
Use what you know about the user naturally when it is relevant. If the user asks about
themselves and the answer is not in what you know, say honestly that you don't know yet.
Never invent facts about the user. Reply in the same language as the user's last message."""

KNOWLEDGE_NONE = """You know nothing about this user yet: no name, no preferences, no history.
If they ask what their name, favourite things or personal details are, say you don't
know yet and invite them to tell you. Do not guess and do not answer with general facts."""

KNOWLEDGE_BLOCK = """What you know about the user:
{profile}{memories}"""

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
- If a new memory changes or contradicts one of the KNOWN memories (the user moved,
  changed job, changed their mind), set "replaces" to that known memory's number.
  Do not repeat a known memory that is still true.
Examples:
User: Hi, I'm Tom. I live in Paris and I love tennis.
{{"memories": [{{"text": "Name is Tom", "type": "profile", "importance": 5, "tags": ["name"]}},
 {{"text": "Lives in Paris", "type": "profile", "importance": 4, "tags": ["location"]}},
 {{"text": "Loves tennis", "type": "preference", "importance": 3, "tags": ["sport"]}}]}}
User: 我养了一只猫，叫小蓝。
{{"memories": [{{"text": "养了一只叫小蓝的猫", "type": "profile", "importance": 4, "tags": ["宠物"]}}]}}
User: What's the weather like?
{{"memories": []}}
KNOWN 1: Works at Google
User: I quit Google and joined a startup.
{{"memories": [{{"text": "Works at a startup (left Google)", "type": "profile", "importance": 4, "tags": ["work"], "replaces": 1}}]}}"""

EXTRACT_USER = """{known}Chat turn to extract from:
User: {user}
(Assistant's reply, context only: {assistant})"""

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

RECONCILE_SYSTEM = """You keep a user's memory list correct and free of duplicates.
For each NEW fact, compare it with the EXISTING memories listed under it and choose:
- "ADD": the new fact is new information; keep the existing ones.
- "UPDATE": the new fact changes or refines an existing memory (for example the user
  moved, changed job, or gave more detail). Give that memory's "id" and the corrected
  "text" (in the user's language).
- "DELETE": the new fact says an existing memory is no longer true and nothing should
  replace it. Give that memory's "id".
- "NONE": the new fact is already known.
Return JSON: {"decisions": [{"fact": <number>, "action": ..., "id": ..., "text": ...}]}
Example:
NEW 1: Lives in Berlin
  EXISTING [a]: Lives in Munich
  EXISTING [b]: Likes beer
{"decisions": [{"fact": 1, "action": "UPDATE", "id": "a", "text": "Lives in Berlin"}]}"""

RECONCILE_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "decisions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "fact": {"type": "integer"},
                    "action": {"type": "string", "enum": ["ADD", "UPDATE", "DELETE", "NONE"]},
                    "id": {"type": "string"},
                    "text": {"type": "string"},
                },
                "required": ["fact", "action"],
            },
        }
    },
    "required": ["decisions"],
}

SUMMARY_SYSTEM = """Summarise the conversation below in at most 120 words, in the language
it is written in. Keep names, decisions, open questions and anything the user asked to
remember. Start from the previous summary if one is given."""
