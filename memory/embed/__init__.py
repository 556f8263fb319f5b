"""Embeddings: the local multilingual embedder or an OpenAI-compatible one, re-embedding, and the k-NN vote on embeddings that classifiers share."""
