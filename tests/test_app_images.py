"""AppTest tests of images in the chat page (app.py): refused clearly without a vision
model, described, stored and remembered with one, broken or oversized files refused with
the text put back. Same real parts as tests/test_app.py."""
from __future__ import annotations

import io

import webui as ui
from tests.app_helpers import (engine, finish_extraction, messages, new_app, no_exceptions,
                               reset_streamlit_caches, send)
from tests.fake_llm import has_image


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------
def test_image_without_vision_model_is_refused_clearly(app_env):
    at = new_app("alice")
    at.chat_input[0].upload("cat.png", png_bytes(), "image/png").run()
    no_exceptions(at)
    assert any("no vision model is configured" in e.value for e in at.error)
    assert engine().threads("alice") == []
    assert not any(has_image(b) for b in app_env.llm.chat_requests())
    # with text, the text is still sent and the user is told the image was not used
    at.chat_input[0].upload("cat.png", png_bytes(), "image/png").set_value("Hello there").run()
    no_exceptions(at)
    assert messages(at)[-1][0] == "assistant"
    assert any("without the image" in t.value for t in at.toast)
    assert not (app_env.data_dir / "images").exists()


def test_image_with_vision_model_is_described_stored_and_remembered(app_env, monkeypatch):
    monkeypatch.setenv("VISION_MODEL", "scripted-vision")
    reset_streamlit_caches()
    at = new_app("alice")
    at.chat_input[0].upload("xiaolan.png", png_bytes(), "image/png") \
        .set_value("this is my cat Xiaolan").run()
    no_exceptions(at)
    vision = [b for b in app_env.llm.chat_requests() if has_image(b)]
    assert len(vision) == 1 and vision[0]["model"] == "scripted-vision"
    stored = list((app_env.data_dir / "images" / "alice").glob("*.png"))
    assert len(stored) == 1 and stored[0].read_bytes() == png_bytes()
    tid = at.session_state[ui.THREAD_KEY]
    first = engine().thread_messages("alice", tid)[0]
    assert "A small grey cat" in first.content and "this is my cat Xiaolan" in first.content
    assert first.metadata["image_path"] == str(stored[0])
    assert len(at.image) >= 1                        # the picture is shown in the chat
    assert messages(at)[0] == ("user", "this is my cat Xiaolan")   # description apart…
    assert any("A small grey cat" in c.value for c in at.chat_message[0].caption)
    assert [t.title for t in engine().threads("alice")] == ["this is my cat Xiaolan"]
    finish_extraction(at)
    cat = [r for r in engine().list("alice") if "Xiaolan" in r.text]
    assert cat and cat[0].metadata.get("image_path") == str(stored[0])
    # later, in a new chat
    at.button(key="new_chat").click().run()
    send(at, "what is my pet called?")
    assert messages(at)[-1] == ("assistant", "Your pet is called Xiaolan.")


def test_broken_or_oversized_image_is_refused_and_text_put_back(app_env, monkeypatch):
    monkeypatch.setenv("VISION_MODEL", "scripted-vision")
    reset_streamlit_caches()
    at = new_app("alice")
    at.chat_input[0].upload("fake.png", b"not really a png", "image/png") \
        .set_value("look at this").run()
    no_exceptions(at)
    assert any("does not look like a PNG image" in e.value for e in at.error)
    assert at.chat_input[0].value == "look at this"
    assert engine().threads("alice") == []
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (ui.MAX_IMAGE_BYTES + 1)
    at.chat_input[0].upload("big.png", big, "image/png").set_value("big one").run()
    assert any("images are limited to 10.0 MB" in e.value for e in at.error)
    assert not any(has_image(b) for b in app_env.llm.chat_requests())
