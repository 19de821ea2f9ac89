"""User-facing errors: one line, naming the file, key or flag and what is allowed."""


class InfercastError(ValueError):
    """Bad input from the user. The CLI prints the message on one line and exits with code 2."""


class DoesNotFit(InfercastError):
    """A configuration whose memory demand exceeds the devices' capacity."""

    def __init__(self, needed_bytes: float, capacity_bytes: float, what: str = ""):
        self.needed_bytes = needed_bytes
        self.capacity_bytes = capacity_bytes
        gib = 2**30
        detail = f" ({what})" if what else ""
        super().__init__(
            f"does not fit: needs {needed_bytes / gib:.1f} GiB, has {capacity_bytes / gib:.1f} GiB{detail}"
        )
