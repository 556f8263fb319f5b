"""The LLM: OpenAI-compatible client, JSON output, retries and errors, the local llama.cpp server and its weights, prompts."""
