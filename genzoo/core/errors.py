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
