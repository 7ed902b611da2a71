"""Frozen dataclasses that are quick to build. The __init__ a frozen dataclass gets sets each field through
object.__setattr__ (its __setattr__ refuses): 2.6 us for the 15 fields of an Estimate, more than the arithmetic that
fills them, and the planner and the scheduling policy build several per offer per job (the simulator, millions).
`quick_init` gives the class an __init__ that takes the same arguments and stores them all at once."""

from dataclasses import MISSING, fields


def quick_init(cls):
    """Class decorator, placed above @dataclass(frozen=True): the same constructor (positional or keyword arguments,
    the same defaults, __post_init__ called after), five times quicker. Fields with a default_factory, keyword-only
    or init=False fields, and slotted classes are refused: the plain __init__ handles them."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init stores fields in __dict__; remove slots=True")
    params, names, defaults = [], [], {}
    for f in fields(cls):
        if f.default_factory is not MISSING or f.kw_only or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init takes plain fields with plain defaults only")
        names.append(f.name)
        if f.default is MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    stored = ", ".join(f"{name!r}: {name}" for name in names)
    post_init = "\n    self.__post_init__()" if hasattr(cls, "__post_init__") else ""
    source = f"def __init__(self, {', '.join(params)}):\n    _set(self, '__dict__', {{{stored}}}){post_init}\n"
    namespace = {"_set": object.__setattr__, **defaults}
    exec(source, namespace)  # as dataclasses builds __init__: one function with the class's own signature
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls
