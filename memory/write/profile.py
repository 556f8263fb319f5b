"""The user profile: a short text of who the user is, rebuilt from their ``profile`` and
``preference`` memories whenever those change (like PowerMem's ``profile_content``).
Constraints (``memory.write.constraints``: diet, allergies, health limits, accessibility,
never/always rules) come first under their own heading, so every prompt has them.

It is derived, not generated: no LLM call, always consistent with the memories (an
UPDATE of "Lives in Shanghai" changes the profile at once), in the user's own language.
"""
from __future__ import annotations

from memory.write.constraints import is_constraint
from memory.write.topics import TOPICS, topic_of

MAX_CONSTRAINT_ITEMS = 10
MAX_PROFILE_ITEMS = 10
MAX_PREFERENCE_ITEMS = 8
#: the heading of the constraints section (``webui.format.profile_markdown`` bolds it)
CONSTRAINTS_TITLE = "Always respect"
#: the heading of older values of one-value topics (an earlier home or job)
EARLIER_TITLE = "Earlier, no longer current"
MAX_EARLIER_ITEMS = 5


def split_current(records: list) -> tuple[list, list]:
    """``(current, earlier)``: of several memories of one one-value topic (home, job,
    workplace … ``Topic.single``, read from the topic tag), the newest by ``created_at``
    is current and the older ones are earlier values; every other memory is current.
    Order within each list is kept."""
    newest: dict[str, object] = {}
    for r in records:
        topic = topic_of(r.tags)
        if topic and TOPICS[topic].single and (
                topic not in newest or r.created_at > newest[topic].created_at):
            newest[topic] = r
    earlier = [r for r in records if (t := topic_of(r.tags)) and TOPICS[t].single
               and newest[t] is not r]
    return [r for r in records if r not in earlier], earlier


def _until(rec):
    """When a past value stopped holding: its ``invalid_at`` (a superseded or ended
    memory), else — an older value of a one-value topic — when it was said."""
    return rec.invalid_at or rec.created_at


def build_profile(store, user_id: str) -> str:
    """Return the profile text of ``user_id``: up to 10 constraints (profile or
    preference memories tagged ``constraint``), 10 other profile facts and 8
    preferences, most important then newest first, and up to 5 earlier values —
    superseded or ended profile and preference memories (``memory.write.versions``) and older
    values of one-value topics (``split_current``) —, as short bulleted sections ("Always
    respect:", "About:", "Preferences:", "Earlier, no longer current:"); "" when the
    user has none."""
    sections = []
    rules: list = []
    past: list = []
    for mtype, title, cap in (("profile", "About", MAX_PROFILE_ITEMS),
                              ("preference", "Preferences", MAX_PREFERENCE_ITEMS)):
        records = store.list_memories(user_id, limit=200, types=[mtype])
        records.sort(key=lambda r: (-r.importance, -r.updated_at.timestamp()))
        rules += [r for r in records if is_constraint(r.tags)]
        records, earlier = split_current([r for r in records if not is_constraint(r.tags)])
        past += earlier
        if records:
            sections.append(title + ":\n" + "\n".join(f"- {r.text}" for r in records[:cap]))
    past += [r for r in store.past_memories(user_id, limit=50)
             if r.type in ("profile", "preference") and not is_constraint(r.tags)]
    if past:
        past.sort(key=lambda r: -_until(r).timestamp())
        seen: set[str] = set()
        shown = [r for r in past if not (r.text in seen or seen.add(r.text))]  # one per text
        sections.append(EARLIER_TITLE + ":\n" + "\n".join(
            f"- {r.text} (until {_until(r):%Y-%m})" for r in shown[:MAX_EARLIER_ITEMS]))
    if rules:
        rules.sort(key=lambda r: (-r.importance, -r.updated_at.timestamp()))
        sections.insert(0, CONSTRAINTS_TITLE + ":\n"
                        + "\n".join(f"- {r.text}" for r in rules[:MAX_CONSTRAINT_ITEMS]))
    return "\n".join(sections)


def refresh_profile(store, user_id: str, at) -> str:
    """Rebuild and store the profile of ``user_id`` (``at``: aware UTC datetime).
    Returns the new text."""
    text = build_profile(store, user_id)
    store.set_profile(user_id, text, at)
    return text
