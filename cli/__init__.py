"""The terminal front end behind main.py: the REPL (``cli.repl``) and shared output helpers (``cli.output``)."""
