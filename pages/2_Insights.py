"""Insights page: the current user's profile and charts of their memories (altair).

Memories over time by type, counts by type and by tag, and the most recalled ones."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

import webui as ui

#: memories loaded for the charts (newest first); older ones are left out
CHART_LIMIT = 5000
TOP_TAGS = 15
TOP_RECALLED = 10


def load_frame(mem: Any, user: str, limit: int = CHART_LIMIT) -> pd.DataFrame:
    """Return up to ``limit`` of the user's memories as a DataFrame with columns
    ``id, text, type, importance, tags, created, day, recalled`` (paged ``mem.list``)."""
    rows: list[dict[str, Any]] = []
    offset = 0
    while len(rows) < limit:
        batch = mem.list(user, limit=min(500, limit - len(rows)), offset=offset)
        if not batch:
            break
        rows += [{"id": r.id, "text": r.text, "type": r.type, "importance": r.importance,
                  "tags": list(r.tags), "created": r.created_at,
                  "recalled": r.access_count} for r in batch]
        offset += len(batch)
    df = pd.DataFrame(rows, columns=["id", "text", "type", "importance", "tags", "created",
                                     "recalled"])
    if not df.empty:
        df["created"] = pd.to_datetime(df["created"], utc=True)
        df["day"] = df["created"].dt.tz_convert(None).dt.floor("D")
    return df


def type_scale() -> alt.Scale:
    """The colour of each memory type, matching the badges of the chat panel."""
    palette = {"profile": "#8e6bd8", "preference": "#3b82f6", "fact": "#22a06b",
               "task": "#f08c00", "summary": "#8a8f98", "episode": "#e0b400"}
    return alt.Scale(domain=list(palette), range=list(palette.values()))


def main() -> None:
    """Render the page."""
    mem = ui.get_memory()
    user = ui.page_header(mem, "Insights", ":material/insights:")

    with st.container(border=True, key="insights_profile"):
        st.markdown("**Profile**")
        profile = mem.profile(user)
        st.markdown(ui.profile_markdown(profile) if profile else
                    ":gray[No profile yet — it is built from profile and preference memories.]")

    df = load_frame(mem, user)
    total = mem.count(user)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Memories", total)
    m2.metric("Types used", int(df["type"].nunique()) if not df.empty else 0)
    m3.metric("Times recalled", int(df["recalled"].sum()) if not df.empty else 0)
    m4.metric("Added in the last 7 days",
              int((df["created"] >= pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=7)).sum())
              if not df.empty else 0)
    if df.empty:
        st.info("No memories yet — chat a little and the charts will appear here.", icon=":material/insights:")
        return
    if total > len(df):
        st.caption(f"Charts use the newest {len(df)} of {total} memories.")

    color = alt.Color("type:N", scale=type_scale(), title="Type")
    st.subheader("Memories over time")
    over_time = df.groupby(["day", "type"]).size().reset_index(name="memories")
    st.altair_chart(
        alt.Chart(over_time).mark_bar().encode(
            x=alt.X("yearmonthdate(day):O", title="Day created",
                    axis=alt.Axis(format="%Y-%m-%d", labelAngle=-40)),
            y=alt.Y("memories:Q", title="Memories", stack=True),
            color=color,
            tooltip=[alt.Tooltip("day:T", title="Day", format="%Y-%m-%d"), "type:N",
                     "memories:Q"]),
        width="stretch")

    c1, c2 = st.columns(2)
    with c1:
        st.subheader("By type")
        by_type = df.groupby("type").size().reset_index(name="memories")
        st.altair_chart(
            alt.Chart(by_type).mark_bar().encode(
                x=alt.X("memories:Q", title="Memories"),
                y=alt.Y("type:N", sort="-x", title=None),
                color=alt.Color("type:N", scale=type_scale(), legend=None),
                tooltip=["type:N", "memories:Q"]),
            width="stretch")
    with c2:
        st.subheader("By tag")
        tags = df.explode("tags").dropna(subset=["tags"])
        if tags.empty:
            st.caption("No tags yet.")
        else:
            by_tag = (tags.groupby("tags").size().reset_index(name="memories")
                      .sort_values("memories", ascending=False).head(TOP_TAGS))
            st.altair_chart(
                alt.Chart(by_tag).mark_bar(color="#5b5bd6").encode(
                    x=alt.X("memories:Q", title="Memories"),
                    y=alt.Y("tags:N", sort="-x", title=None),
                    tooltip=[alt.Tooltip("tags:N", title="Tag"), "memories:Q"]),
                width="stretch")

    st.subheader("Most recalled")
    top = mem.list(user, limit=TOP_RECALLED, order="accessed_desc")
    top = [r for r in top if r.access_count > 0]
    if not top:
        st.caption("No memory has been recalled in a reply yet.")
    else:
        st.dataframe(pd.DataFrame([{"memory": r.text, "type": r.type,
                                    "recalled": r.access_count,
                                    "last recalled": r.last_accessed_at} for r in top]),
                     hide_index=True, width="stretch",
                     column_config={
                         "memory": st.column_config.TextColumn("Memory", width="large"),
                         "recalled": st.column_config.ProgressColumn(
                             "Recalled", format="%d", min_value=0,
                             max_value=max(r.access_count for r in top)),
                         "last recalled": st.column_config.DatetimeColumn(
                             "Last recalled", format="YYYY-MM-DD HH:mm")})


with ui.store_errors_shown():
    main()
