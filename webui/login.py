"""The web app's optional login: sign in with your API key when ``MEMORY_WEB_LOGIN`` is on.

Off (the default, one person on one machine): the sidebar user box lets anyone using
this browser open any user id, and the sidebar says so. On (``MEMORY_WEB_LOGIN=1``, a
shared deployment): every page first asks for the user's API key (issued by
``python -m memory.api user create U`` / ``key create U``, checked against the salted
argon2 hashes in ``<data dir>/keys.db`` by ``memory.api.keys``); the user id comes from
the key, the user box disappears, and nobody can switch into someone else's memories.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

#: session_state key of the signed-in user id (set only by a verified key)
SIGNED_IN_KEY = "_signed_in_user"


def login_required(mem: Any) -> bool:
    """True when the deployment asks for a login (``config.memory_web_login``)."""
    return bool(getattr(mem.config, "memory_web_login", False))


def signed_in_user(mem: Any) -> str:
    """Return the signed-in user id; when nobody is signed in, draw the sign-in form
    and stop the page (``st.stop()``), so nothing of any user is shown. A wrong,
    revoked or malformed key shows one line and stays on the form."""
    uid = st.session_state.get(SIGNED_IN_KEY)
    if uid:
        return uid
    st.title(":material/lock: Sign in to Memory Chat")
    st.caption("This Memory Chat is shared, so each person signs in with their own API key. "
               "Ask the administrator for one (python -m memory.api user create YOUR_ID).")
    with st.form("sign_in"):
        key = st.text_input("API key", type="password", placeholder="mk_…")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        principal = _verify(mem, key)
        if principal is None:
            st.error("That key is not valid (unknown, revoked or mistyped).")
        else:
            st.session_state[SIGNED_IN_KEY] = principal.user_id
            st.rerun()
    st.stop()
    return ""  # not reached: st.stop() ends the run


def sign_out_button() -> None:
    """Sidebar line naming the signed-in user, with a Sign out button that forgets the
    session's user and every per-user state."""
    with st.sidebar:
        st.markdown(f":material/person: Signed in as **{st.session_state[SIGNED_IN_KEY]}**")
        if st.button("Sign out", icon=":material/logout:"):
            for key in list(st.session_state):
                del st.session_state[key]
            st.rerun()


def unauthenticated_note() -> None:
    """The sidebar's honest line for the default local mode."""
    with st.sidebar:
        st.caption(":material/lock_open: Local mode, no login: anyone using this browser can "
                   "open any user id. Set MEMORY_WEB_LOGIN=1 for a shared deployment.")


def _verify(mem: Any, key: str):
    from memory.api.keys import open_keystore

    store = open_keystore(mem.config.memory_data_dir)
    try:
        return store.verify((key or "").strip())
    finally:
        store.close()
