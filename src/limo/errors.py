"""Errors that the CLI turns into one clear message instead of a traceback."""


class LimoError(Exception):
    """A user-facing error: bad input, bad config, unreachable server. The message says what to fix."""


class InputError(LimoError):
    """Bad input data. The message names the file, the line (1-based) and the field when they are known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path, self.line, self.field = path, line, field
