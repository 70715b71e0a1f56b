"""Constructor options recorded at construction (as diffusers' `register_to_config` does), so that a component built
in Python, not from a recipe, can still be saved and described: `recorded_options(obj)`."""

from __future__ import annotations

import functools
import inspect


def record_init(cls) -> None:
    """Wrap cls.__init__ so that the outermost constructor call stores its bound arguments, defaults filled, in
    obj.__dict__["init_options"] (not an attribute nn.Module tracks). Called from __init_subclass__."""
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_records", False):
        return
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self).__init__ is wrapper:  # the object's own class: parents' calls through super() do not record
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            self.__dict__["init_options"] = {k: v for k, v in list(bound.arguments.items())[1:]}

    wrapper._records = True
    cls.__init__ = wrapper


def recorded_options(obj) -> dict:
    """The options obj was constructed with ({} for an object built before recording existed)."""
    return dict(obj.__dict__.get("init_options", {}))
