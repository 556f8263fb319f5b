"""Prompt texts and JSON schemas for the chat reply, fact extraction and reconciliation.

Kept short and example-driven: the offline default is a 1.5B-parameter model, which
follows concrete examples far better than long rules. Schemas are deliberately simple
(enums instead of numeric ranges) so llama.cpp can turn them into a grammar.
"""
from __future__ import annotations

CHAT_SYSTEM = """You are Memory Chat, an assistant that remembers the user. You are the
assistant, not the user: never speak as the user and never take their facts as yours.
Today is {today}.
{knowledge}
How to answer:
- Answer the user's last message directly and helpfully. Speak to the user as "you".
- Whatever is listed under "Always respect" holds in every answer: never suggest or
  assume anything that goes against it.
- For ideas, suggestions or recommendations, choose ones that fit the facts listed
  above and say which listed fact you used. Use only listed facts; if none fits, give
  general ideas without saying anything about the user.
- When they ask who they are or what you know about them, describe them in the second
  person ("you" in their language, e.g. 你, vous, du) and never answer as if you were
  them: the listed facts are theirs, not yours. If something is not listed, say you
  don't know yet. Never invent facts about the user.
- Facts under "Earlier, no longer current" are past: never treat them as true now.
- Never repeat the user's message back; answer it.
- Reply in the same language as the user's last message."""

KNOWLEDGE_NONE = """You know nothing about this user yet. When they tell you about
themselves, welcome it warmly (you will remember it). If they ask about their own name,
favourite things or personal details, say you don't know yet and invite them to tell
you; do not guess and do not answer with general facts."""

THREAD_SUMMARY = "Summary of the earlier part of this conversation:\n{summary}"

EXTRACT_SYSTEM = """You extract memories about the USER from the user's message.
Return JSON: {"memories": [{"text": ..., "topic": ...}]}
Rules:
- Only what the user states about themselves: name, age, home, job, workplace, family,
  pets, health, education, likes, dislikes, habits, plans, events in their life.
- One short atomic fact per item. Split "I work in Zurich as a data engineer" into
  "Works as a data engineer" (job) and "Works in Zurich" (workplace).
- Facts about another person stay about that person ("Sister lives in Berlin", topic
  family); never turn them into facts about the user.
- Nothing from questions, greetings, requests, wishes or "if I were ..." sentences:
  then return {"memories": []}.
- Keep time words as the user said them ("last week", "上个月").
- Write every memory in the language named before the message, without "User".
- topic: name, age, home (where they live), job (occupation), workplace (employer or
  place of work), family, pet, health, education, like, dislike, habit, plan, event, other.
- KNOWN lists what is already stored, when shown. If a memory changes one KNOWN memory
  of the same topic (moved home, new job, stopped a habit, a correction), set
  "replaces" to that KNOWN number. Do not repeat a KNOWN memory that is still true.
Examples:
Language: English
User: Hi, I'm Anna. I live in Oslo, I work in Bergen as a maths teacher and I love skiing but hate running.
{"memories": [{"text": "Name is Anna", "topic": "name"}, {"text": "Lives in Oslo", "topic": "home"}, {"text": "Works as a maths teacher", "topic": "job"}, {"text": "Works in Bergen", "topic": "workplace"}, {"text": "Loves skiing", "topic": "like"}, {"text": "Hates running", "topic": "dislike"}]}
Language: English
User: My brother lives in Rome. If I were rich I'd buy a boat.
{"memories": [{"text": "Brother lives in Rome", "topic": "family"}]}
Language: Chinese
User: 我叫李娜，在杭州当护士，喜欢爬山，但不吃香菜。
{"memories": [{"text": "名字是李娜", "topic": "name"}, {"text": "是一名护士", "topic": "job"}, {"text": "在杭州工作", "topic": "workplace"}, {"text": "喜欢爬山", "topic": "like"}, {"text": "不吃香菜", "topic": "dislike"}]}
Language: Chinese
User: 我妹妹在深圳工作。要是我有钱就去环游世界。
{"memories": [{"text": "妹妹在深圳工作", "topic": "family"}]}
KNOWN 1: Works at Google (workplace)
KNOWN 2: Is a data engineer (job)
Language: English
User: I quit Google last month and joined a startup.
{"memories": [{"text": "Works at a startup since last month", "topic": "workplace", "replaces": 1}]}
KNOWN 1: 住在上海 (home)
KNOWN 2: 是一名设计师 (job)
Language: Chinese
User: 我上周搬到苏州了。
{"memories": [{"text": "上周搬到苏州", "topic": "home", "replaces": 1}]}
Language: English
User: What should I cook tonight?
{"memories": []}"""

#: The per-turn part of an extraction call. Everything that changes from turn to turn
#: is here, after the fixed system prompt, so llama.cpp reuses the cached prefix.
EXTRACT_USER = """{known}{context}Language: {language}
User: {user}"""
EXTRACT_CONTEXT = "(The user is answering the assistant: {assistant})\n"

EXTRACT_KNOWN_LINE = "KNOWN {n}: {text} ({topic})"


def extract_schema(topics: list[str], with_replaces: bool) -> dict:
    """The JSON schema of an extraction answer: ``{"memories": [{"text", "topic",
    "replaces"?}]}`` with ``topic`` an enum of ``topics`` (a grammar-constrained small
    model picks from an enum reliably); ``replaces`` only when KNOWN memories are
    shown."""
    props: dict = {"text": {"type": "string"}, "topic": {"type": "string", "enum": list(topics)}}
    if with_replaces:
        props["replaces"] = {"type": "integer"}
    return {
        "type": "object",
        "properties": {"memories": {"type": "array", "items": {
            "type": "object", "properties": props, "required": ["text", "topic"]}}},
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
