"""One exception type for everything a user can get wrong.

A GenzooError carries a message naming the problem and a fix; the CLI prints it as one line and exits non-zero
(the traceback only with --debug).
"""


class GenzooError(Exception):
    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}. {fix}" if fix else problem)


def did_you_mean(name: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def failure_line(exc: Exception, command: str) -> str:
    """The one line a command's failure prints: a GenzooError's problem and fix; for anything else (a bug, a full
    disk, an allocation failure) the command and the exception."""
    if isinstance(exc, GenzooError):
        return str(exc)
    return f"genzoo {command} failed: {describe_exception(exc)}; rerun with --debug for the traceback"


def describe_exception(exc: Exception) -> str:
    """One line for an exception genzoo did not foresee; disk, permission and memory problems say what to do."""
    import errno

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device while writing '{exc.filename or '?'}': free disk space and run it again"
    if isinstance(exc, PermissionError):
        return f"permission denied for '{exc.filename or '?'}': choose a folder you can write to"
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
        return f"out of memory ({text or type(exc).__name__}): lower the batch size or the model's size"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
