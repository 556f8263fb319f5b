"""One chat turn: retrieve, prompt, stream the reply, learn; images in a turn."""
