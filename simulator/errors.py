"""User-facing errors: one line, naming the file, key or flag and what is allowed."""


class InfercastError(ValueError):
    """Bad input from the user. The CLI prints the message on one line and exits with code 2."""

