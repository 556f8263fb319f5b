"""The user profile: a short text of who the user is, rebuilt from their ``profile`` and
``preference`` memories whenever those change (like PowerMem's ``profile_content``).

It is derived, not generated: no LLM call, always consistent with the memories (an
UPDATE of "Lives in Shanghai" changes the profile at once), in the user's own language.
"""
from __future__ import annotations

MAX_PROFILE_ITEMS = 10
MAX_PREFERENCE_ITEMS = 8


def build_profile(store, user_id: str) -> str:
    """Return the profile text of ``user_id``: up to 10 profile facts and 8 preferences,
    most important then newest first, as two short bulleted sections; "" when the user
    has neither."""
    sections = []
    for mtype, title, cap in (("profile", "About", MAX_PROFILE_ITEMS),
                              ("preference", "Preferences", MAX_PREFERENCE_ITEMS)):
        records = store.list_memories(user_id, limit=200, types=[mtype])
        records.sort(key=lambda r: (-r.importance, -r.updated_at.timestamp()))
        if records:
            sections.append(title + ":\n" + "\n".join(f"- {r.text}" for r in records[:cap]))
    return "\n".join(sections)


def refresh_profile(store, user_id: str, at) -> str:
    """Rebuild and store the profile of ``user_id`` (``at``: aware UTC datetime).
    Returns the new text."""
    text = build_profile(store, user_id)
    store.set_profile(user_id, text, at)
    return text
