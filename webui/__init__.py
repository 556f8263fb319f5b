"""The Streamlit web app's glue (``import webui as ui`` in app.py and pages/): session, user, sidebar, formatting.

No engine logic here: memories go through the public ``Memory`` API; image checks and
storage live in ``memory.chat.images`` and export/import validation in ``memory.backup``
(re-exported below for the pages).
"""
from memory.backup import MAX_IMPORT_BYTES, parse_export
from memory.chat.images import IMAGE_TYPES, MAX_IMAGE_BYTES, image_path_of_user, validate_image
from webui.format import (CSV_COLUMNS, EVENT_COLORS, EVENT_LABELS, TYPE_COLORS, ago,
                          apply_edits, changes_summary, date_range, dir_size, event_badge,
                          export_csv_text, export_json_text, human_bytes, importance_stars,
                          md_escape, parse_tags, profile_markdown, type_badge)
from webui.session import (DEFAULT_USER, HEALTH_TTL_S, PAGES, RECENT_USERS_MAX, THREAD_KEY,
                           USER_KEY, current_user, forget_user, get_executor, get_memory,
                           health, init_error_message, load_recent_users, model_names,
                           normalize_user_id, page_header, remember_user, reset_caches,
                           sidebar_status, sidebar_top, status_lines, store_errors_shown,
                           switch_user, user_switcher)

__all__ = [
    "CSV_COLUMNS", "DEFAULT_USER", "EVENT_COLORS", "EVENT_LABELS", "HEALTH_TTL_S",
    "IMAGE_TYPES", "MAX_IMAGE_BYTES", "MAX_IMPORT_BYTES", "PAGES", "RECENT_USERS_MAX",
    "THREAD_KEY", "TYPE_COLORS", "USER_KEY", "ago", "apply_edits", "changes_summary",
    "current_user", "date_range", "dir_size", "event_badge", "export_csv_text",
    "export_json_text", "forget_user", "get_executor", "get_memory", "health",
    "human_bytes", "image_path_of_user", "importance_stars", "init_error_message",
    "load_recent_users", "md_escape", "model_names", "normalize_user_id", "page_header",
    "parse_export", "parse_tags", "profile_markdown", "remember_user", "reset_caches",
    "sidebar_status", "sidebar_top", "status_lines", "store_errors_shown", "switch_user",
    "type_badge", "user_switcher", "validate_image",
]
