"""Vision and speech requests of the chat-model client: ``LLM.describe_image`` and
``LLM.transcribe`` (a mixin of ``memory.llm.client.LLM``, which provides the client, the
request counter and the error translation it uses)."""
from __future__ import annotations

import base64

from memory.llm.errors import LLMError
from memory.llm.retry import FAILURES as _FAILURES


class MediaRequests:
    """Image description and audio transcription on the configured endpoint (mixed
    into ``memory.llm.client.LLM``)."""

    # ------------------------------------------------------------------ vision
    def describe_image(self, image: bytes, mime: str, prompt: str) -> str:
        """Return ``VISION_MODEL``'s text answer to ``prompt`` about ``image`` (raw bytes
        of type ``mime``, e.g. ``image/png``), sent as a base64 data URL in the OpenAI
        vision message format to the configured endpoint.

        Raises LLMError when no vision model is configured, on an empty image, or on
        transport errors.
        """
        if not self.config.vision_model:
            raise LLMError("No vision model configured (set VISION_MODEL)")
        if not image:
            raise LLMError("The image is empty")
        url = f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
        client = self._get_client()
        messages = [{"role": "user", "content": [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": url}},
        ]}]
        return self._complete(client, {"model": self.config.vision_model,
                                       "messages": messages, "temperature": 0})

    # ------------------------------------------------------------------ speech
    def transcribe(self, audio: bytes, filename: str) -> str:
        """Return ``TRANSCRIPTION_MODEL``'s transcript of ``audio`` (raw bytes of an audio
        file named ``filename``; the name's extension tells the endpoint the format),
        from the OpenAI-compatible ``POST /audio/transcriptions`` of the configured
        endpoint. Raises LLMError when no transcription model is configured, on empty
        audio, or on transport errors."""
        if not self.config.transcription_model:
            raise LLMError("No transcription model configured (set TRANSCRIPTION_MODEL)")
        if not audio:
            raise LLMError("The audio file is empty")
        client = self._get_client()
        self._count_call()
        try:
            resp = client.audio.transcriptions.create(
                model=self.config.transcription_model, file=(filename, audio))
        except _FAILURES as exc:
            raise self._wrap(exc) from None
        return str(getattr(resp, "text", "") or "")

