"""What may enter the store: sanitising, PII redaction, input limits, user ids."""
