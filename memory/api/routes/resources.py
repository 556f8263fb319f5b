"""``/v1/resources``: upload a file (its facts become memories), list, get, its memories, soft delete.

The body guard (``memory.api.limits``) refuses an upload over ``MEMORY_MAX_UPLOAD_MB``
(413) before it is read, and anything but ``multipart/form-data`` (415); the form is
spooled to a temporary file, never held whole in memory. A refused or disguised type is
415, nothing stored. Another user's resource id answers 404, exactly like an unknown one.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from memory.api import schemas as s
from memory.api.deps import current_user, engine
from memory.api.engine import Engine
from memory.api.errors import not_found
from memory.api.keys import Principal

router = APIRouter(prefix="/v1/resources", tags=["resources"])
User = Annotated[Principal, Depends(current_user)]
Eng = Annotated[Engine, Depends(engine)]
_UPLOAD_ERRORS = {
    200: {"model": s.Resource, "description": "the same file was uploaded before: that resource"},
    413: {"description": "the file is over MEMORY_MAX_UPLOAD_MB (refused before it is read)"},
    415: {"description": "not multipart/form-data, or a refused or disguised file type"},
    503: {"description": "the store is down"},
}


@router.post("", response_model=s.Resource, status_code=201, responses=_UPLOAD_ERRORS)
def upload_resource(user: User, eng: Eng,
                    file: Annotated[UploadFile, File(description="text, Markdown, HTML, PDF, "
                                                                 "DOCX, image or audio")]):
    """Upload a file; what it says about the caller becomes memories linked to it
    (``source="resource"``, ``metadata.resource_id``), reconciled with the chat's.
    Answers when learning is done: ``status`` ``ready`` (``memory_count``, ``detail``)
    or ``failed`` with a one-line ``error`` (corrupt, empty, no text layer, LLM down:
    nothing half-stored). The same file again answers 200 with the existing resource."""
    res = eng.add_resource(user.user_id, file.file, filename=file.filename,
                           mime=file.content_type, size=_size(file))
    if res.get("duplicate"):
        return JSONResponse(s.Resource(**res).model_dump(mode="json"), status_code=200)
    return res


@router.get("", response_model=s.ResourceList)
def list_resources(user: User, eng: Eng,
                   include_deleted: Annotated[bool, Query(description="also soft-deleted ones")] = False):
    """The caller's resources, newest first, with ``status`` and ``memory_count``."""
    return {"resources": eng.resources(user.user_id, include_deleted=include_deleted)}


@router.get("/{resource_id}", response_model=s.Resource, responses={404: {}})
def get_resource(resource_id: str, user: User, eng: Eng):
    """One live resource of the caller."""
    res = eng.resource(user.user_id, resource_id)
    if res is None:
        raise not_found("resource")
    return res


@router.get("/{resource_id}/memories", response_model=s.ResourceMemories, responses={404: {}})
def resource_memories(resource_id: str, user: User, eng: Eng):
    """The live memories learned from one resource, in document order."""
    rows = eng.resource_memories(user.user_id, resource_id)
    if rows is None:
        raise not_found("resource")
    return {"memories": rows}


@router.delete("/{resource_id}", status_code=204, responses={404: {}})
def delete_resource(resource_id: str, user: User, eng: Eng):
    """Soft-delete a resource: its memories leave search and lists (their history
    keeps a DELETE naming it); the resource stays listed with ``include_deleted``."""
    if not eng.delete_resource(user.user_id, resource_id):
        raise not_found("resource")
    return Response(status_code=204)


def _size(file: UploadFile) -> int | None:
    """The uploaded file's length in bytes as Starlette counted it while spooling, or
    None (then the engine's limited read finds an oversized file)."""
    return file.size if isinstance(file.size, int) else None
