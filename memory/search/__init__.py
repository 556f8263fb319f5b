"""Hybrid search (vector + full text, RRF) and what shapes it: neighbours in a conversation, dates in a query, speakers, whose fact it is, the user's past."""
