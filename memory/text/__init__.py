"""Language-neutral text handling: language id, full-text tokens, the lexicon of per-language word lists, dates."""
