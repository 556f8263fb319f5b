"""The web app's optional login: sign in with your API key when ``MEMORY_WEB_LOGIN`` is on.

Off (the default, one person on one machine): the sidebar user box lets anyone using
this browser open any user id, and the sidebar says so. On (``MEMORY_WEB_LOGIN=1``, a
shared deployment): every page first asks for the user's API key (issued by
``python -m memory.api user create U`` / ``key create U``, checked against the salted
argon2 hashes in ``<data dir>/keys.db`` by ``memory.api.keys``); the user id comes from
the key, the user box disappears, and nobody can switch into someone else's memories.
The session keeps the key's id (never the key) and checks on every run of every page
that the key is still active (one indexed lookup in ``keys.db``, no argon2), so a key
revoked or rotated from the CLI, the admin API or another server process ends the
session at the next click, with a note saying why.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

#: session_state key of the signed-in user id (set only by a verified key)
SIGNED_IN_KEY = "_signed_in_user"
#: session_state key of the id of the key the session signed in with
SIGNED_IN_KEY_ID = "_signed_in_key_id"
_ENDED = "_session_ended"


def login_required(mem: Any) -> bool:
    """True when the deployment asks for a login (``config.memory_web_login``)."""
    return bool(getattr(mem.config, "memory_web_login", False))


def signed_in_user(mem: Any) -> str:
    """Return the signed-in user id; when nobody is signed in, draw the sign-in form
    and stop the page (``st.stop()``), so nothing of any user is shown. A wrong,
    revoked or malformed key shows one line and stays on the form. A session whose key
    has been revoked since it signed in is ended first (every per-user state dropped)."""
    uid = st.session_state.get(SIGNED_IN_KEY)
    if uid:
        if session_key_active(mem, uid, st.session_state.get(SIGNED_IN_KEY_ID)):
            return uid
        _forget_session()
        st.session_state[_ENDED] = True
    st.title(":material/lock: Sign in to Memory Chat")
    st.caption("This Memory Chat is shared, so each person signs in with their own API key. "
               "Ask the administrator for one (python -m memory.api user create YOUR_ID).")
    if st.session_state.get(_ENDED):
        st.warning("You were signed out: the key of this session has been revoked or "
                   "rotated. Sign in with your current key.", icon=":material/key_off:")
    with st.form("sign_in"):
        key = st.text_input("API key", type="password", placeholder="mk_…")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        principal = _verify(mem, key)
        if principal is None:
            st.error("That key is not valid (unknown, revoked or mistyped).")
        else:
            st.session_state.pop(_ENDED, None)
            st.session_state[SIGNED_IN_KEY] = principal.user_id
            st.session_state[SIGNED_IN_KEY_ID] = principal.key_id
            st.rerun()
    st.stop()
    return ""  # not reached: st.stop() ends the run


def sign_out_button() -> None:
    """Sidebar line naming the signed-in user, with a Sign out button that forgets the
    session's user and every per-user state."""
    with st.sidebar:
        st.markdown(f":material/person: Signed in as **{st.session_state[SIGNED_IN_KEY]}**")
        if st.button("Sign out", icon=":material/logout:"):
            _forget_session()
            st.rerun()


def session_key_active(mem: Any, user_id: str, key_id: str | None) -> bool:
    """True if ``key_id`` is still an active key of ``user_id`` in the deployment's
    ``keys.db`` (one indexed lookup, no argon2); False for a revoked, rotated, unknown or
    missing key id (a session from before key ids were kept)."""
    if not key_id:
        return False
    return _keystore(str(mem.config.memory_data_dir)).active_owner(key_id) == user_id


def _forget_session() -> None:
    """Drop every session state: the signed-in user, its key id and all per-user state."""
    for key in list(st.session_state):
        del st.session_state[key]


def unauthenticated_note() -> None:
    """The sidebar's honest line for the default local mode."""
    with st.sidebar:
        st.caption(":material/lock_open: Local mode, no login: anyone using this browser can "
                   "open any user id. Set MEMORY_WEB_LOGIN=1 for a shared deployment.")


@st.cache_resource(show_spinner=False)
def _keystore(data_dir: str):
    """The process's KeyStore on ``<data_dir>/keys.db`` (thread-safe; it reads
    revocations from the file on every call, so other processes' changes are seen)."""
    from memory.api.keys import open_keystore

    return open_keystore(data_dir)


def _verify(mem: Any, key: str):
    return _keystore(str(mem.config.memory_data_dir)).verify((key or "").strip())
