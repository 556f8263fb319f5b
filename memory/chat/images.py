"""Image attachments of chat messages: check, describe, store safely per user, find again.

Files live under ``<data dir>/images/<user folder>/`` (0600 files, 0700 folders); no user
id can name a path outside its own folder."""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from memory.safety.users import check_user_id

#: largest accepted image, in bytes (10 MiB); also set in .streamlit/config.toml
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: accepted image extensions
IMAGE_TYPES = ("png", "jpg", "jpeg", "gif", "webp")
#: how an image description is appended to the user's message (sent to the model and
#: stored in the thread, so memory extraction sees it too)
IMAGE_MARK = "[Attached image: "
#: what the vision model is asked about an attached image
IMAGE_PROMPT = ("Describe this image in one to three sentences so it can be remembered "
                "later: what or who is shown, any visible names or text, notable details. "
                "Be factual; do not guess names that are not visible.")

# Magic numbers of the accepted formats (first bytes of the file).
_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpg": (b"\xff\xd8\xff",), "jpeg": (b"\xff\xd8\xff",),
          "gif": (b"GIF87a", b"GIF89a"), "webp": (b"RIFF",)}
_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
         "webp": "image/webp"}
# A user id used as a folder name as is: nothing that a file system treats specially.
_PLAIN_ID = re.compile(r"^[\w@+-][\w.@+-]{0,63}$")
_FILE_NAME = re.compile(r"^[0-9a-f]{32}\.(?:png|jpe?g|gif|webp)$")


@dataclass
class Attachment:
    """An image attached to a chat message: where it is stored and what the vision
    model saw in it."""

    path: Path
    description: str


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def image_ext(name: str) -> str:
    """Return the lower-case extension of a file name without the dot ('' if none)."""
    return Path(name or "").suffix.lower().lstrip(".")


def validate_image(name: str, data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """Check an uploaded image and return its extension (``png``, ``jpg``…).

    Raises ValueError with a user-facing message when the file is empty, larger than
    ``max_bytes``, not one of ``IMAGE_TYPES`` or when its content does not start with
    the magic number of that format."""
    ext = image_ext(name)
    if ext not in IMAGE_TYPES:
        raise ValueError(f"“{name}” is not a supported image (use {', '.join(IMAGE_TYPES)}).")
    if not data:
        raise ValueError(f"“{name}” is empty.")
    if len(data) > max_bytes:
        raise ValueError(f"“{name}” is {_size(len(data))}; images are limited to "
                         f"{_size(max_bytes)}.")
    if not any(data.startswith(m) for m in _MAGIC[ext]) or (
            ext == "webp" and data[8:12] != b"WEBP"):
        raise ValueError(f"“{name}” does not look like a {ext.upper()} image.")
    return ext


def image_mime(ext: str) -> str:
    """Return the MIME type of an accepted image extension."""
    return _MIME.get(ext, "application/octet-stream")


def user_folder(data_dir: str | os.PathLike[str], user_id: str) -> Path:
    """Return ``<data_dir>/images/<folder>`` of ``user_id`` (a valid id, see
    ``memory.safety.users``). The folder is the id itself when it is a plain name (letters,
    digits, ``. _ @ + -``, not starting with a dot, ≤ 64 chars), otherwise ``~`` + the
    first 40 hex digits of its SHA-256: no id can name a path outside ``images/`` or
    another user's folder."""
    uid = check_user_id(user_id)
    name = uid if _PLAIN_ID.match(uid) else "~" + hashlib.sha256(uid.encode()).hexdigest()[:40]
    return Path(data_dir) / "images" / name


def save_image(data_dir: str | os.PathLike[str], user_id: str, data: bytes, ext: str) -> Path:
    """Write ``data`` to ``user_folder(...)/<random uuid>.<ext>`` (file 0600, folders
    0700, never overwriting) and return the path. Raises ValueError for an invalid user
    id or extension, OSError when the file cannot be written."""
    if ext not in IMAGE_TYPES:
        raise ValueError(f"not an image extension: {ext!r}")
    folder = user_folder(data_dir, user_id)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.{ext}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def image_path_of_user(data_dir: str | os.PathLike[str], user_id: str,
                       raw: str | None) -> Path | None:
    """Return ``raw`` (a stored ``image_path``) resolved if it names a regular file that
    ``save_image`` could have written for ``user_id``, directly in that user's folder;
    otherwise None: never another user's file, never a path outside the folder, never
    for an invalid id (``.``, ``..``)."""
    if not raw or not isinstance(raw, str):
        return None
    try:
        base = user_folder(data_dir, user_id).resolve()
        path = Path(raw).resolve()
        if path.parent == base and _FILE_NAME.match(path.name) and path.is_file():
            return path
    except (OSError, ValueError):
        return None
    return None


def attach_images(llm, data_dir: str | os.PathLike[str], user_id: str,
                  images: list[tuple[str, bytes]]) -> list[Attachment]:
    """Check, describe (one vision call each) and store ``images`` = ``[(file name,
    bytes)]`` for ``user_id``; return one Attachment per image, in order.

    Everything is checked and described before the first file is written. Raises
    ValueError for a bad image, LLMError when no vision model is configured or it
    fails, OSError when a file cannot be written."""
    checked = []
    for item in images:
        if not (isinstance(item, (tuple, list)) and len(item) == 2
                and isinstance(item[1], (bytes, bytearray))):
            raise ValueError("each image must be a (file name, bytes) pair")
        name, data = str(item[0]), bytes(item[1])
        checked.append((data, validate_image(name, data)))
    described = [(data, ext, " ".join(str(llm.describe_image(data, image_mime(ext),
                                                              IMAGE_PROMPT)).split()))
                 for data, ext in checked]
    return [Attachment(save_image(data_dir, user_id, data, ext), text)
            for data, ext, text in described]


def with_descriptions(text: str, attachments: list[Attachment]) -> str:
    """Return the user's ``text`` followed by one ``[Attached image: …]`` line per
    attachment (what the chat model and memory extraction read)."""
    marks = [f"{IMAGE_MARK}{a.description}]" for a in attachments]
    return "\n\n".join([text, *marks] if text else marks)
