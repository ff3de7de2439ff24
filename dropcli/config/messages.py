"""Config problems as one line for a person: pydantic's errors translated, unknown keys matched.

A problem is ``(loc, message)``, ``loc`` as in pydantic: ``("model", "hidden_dims", 1)``. The
first one becomes the ``ConfigError``, e.g. ``x.yaml:12: model.hidden_dims[1]: expected an
integer >= 1, found -3 (and 1 more)``. What a field accepts is read from its schema type (or
its ``Expect`` marker); an unknown key gets a did-you-mean, and the other names of keep_prob
(``p``, ``rate``, ``drop_prob``, ...) get the equivalent keep_prob value. A boolean or number
found where text was expected (``name: no``) gets a hint to quote it.
"""

import datetime
import difflib
import json
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, NoReturn, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ValidationError

from dropcli.config.schema import SECTIONS, Config, Expect, config_paths
from dropcli.errors import ConfigError

Problem = tuple[tuple, str]  # (loc, message), loc as in pydantic: ("model", "hidden_dims", 1)
QUOTE_IT = "; to mean the text, quote it"  # YAML read `no` as false, `123` as a number; a file adds ": 'no'"


class Invalid(Exception):
    """Raised by validation with every problem found; turned into one ConfigError by ``fail``."""

    def __init__(self, problems: list[Problem]):
        super().__init__(problems)
        self.problems = problems


def fail(problems: list[Problem], where: Callable[[tuple], str]) -> NoReturn:
    """Raise the first problem as a ConfigError; ``where(loc)`` gives its prefix ('x.yaml:3: ')."""
    # the same mistake in several items of a list (`[0, 0]`, `--set seed=,`) is one problem
    distinct = {(tuple(p for p in place if not isinstance(p, int)), m) for place, m in problems}
    more = f" (and {len(distinct) - 1} more)" if len(distinct) > 1 else ""
    loc, message = problems[0]
    raise ConfigError(f"{where(loc)}{dotted(loc)}: {message}{more}")


def dotted(loc: tuple) -> str:
    """A loc as the user writes it: ``model.hidden_dims[1]``, each key cut like a value."""
    return path_text(loc).lstrip(".") or "(top level)"


def path_text(loc: tuple) -> str:
    """The keys and indexes of a loc as they follow a name: ``.model.hidden_dims[1]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{cut(str(p))}" for p in loc)


def show(value: Any) -> str:
    """A found value as the user would have written it: 'abc', -3, true, null, [1, 2]."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    except ValueError:  # a self-referencing YAML alias
        text = repr(value)
    return cut(text)


SHOWN = 60  # the most characters of a key or value an error message repeats


def cut(text: str) -> str:
    """``text`` as an error message repeats it: a 100 kB key or value shown by its start."""
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


def translate(error: ValidationError) -> list[Problem]:
    """pydantic's errors as (loc, message for a person), one per location."""
    problems: dict[tuple, str] = {}
    errors = error.errors(include_url=False)
    failed = [e["loc"] for e in errors]
    for e in errors:
        if e["type"] == "extra_forbidden":
            problems.setdefault(tuple(e["loc"]), unknown_key(tuple(e["loc"]), e["input"], "file"))
            continue
        n = len(e["loc"])
        if e["type"] == "too_short" and any(len(f) > n and f[:n] == e["loc"] for f in failed):
            continue  # `[0]`: its item failed, so it is also "too short after validation"
        tp, loc = _locate(tuple(e["loc"]))
        msg = e["msg"][0].lower() + e["msg"][1:]
        expected = f"expected {expect(tp)}" if tp is not None else msg
        found = e["input"]
        hint = QUOTE_IT if e["type"] == "string_type" and isinstance(found, _NOT_TEXT) else ""
        problems.setdefault(loc, f"{expected}, found {show(found)}{hint}")
    return list(problems.items())


_NOT_TEXT = (bool, int, float, datetime.date)  # what YAML makes of `no`, `123`, `1.0`, `2024-01-01`


def _unwrap(tp: Any) -> Any:
    return get_args(tp)[0] if get_origin(tp) is Annotated else tp


def _field_type(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _locate(loc: tuple) -> tuple[Any, tuple]:
    """The schema type at an error loc, and the loc without pydantic's union-member tags."""
    tp, kept = Config, []
    for part in loc:
        base = _unwrap(tp)
        if isinstance(base, type) and issubclass(base, BaseModel) and part in base.model_fields:
            tp = _field_type(base, part)
        elif get_origin(base) is tuple and isinstance(part, int):
            tp = get_args(base)[0]
        elif get_origin(base) is dict and isinstance(part, str):
            tp = get_args(base)[1]
        elif get_origin(base) in (Union, UnionType):
            break  # `part` names a union member, not a key
        else:
            return None, loc
        kept.append(part)
    return tp, tuple(kept)


_WORDS = {int: ("an integer", "integers"), float: ("a number", "numbers"),
          str: ("a string", "strings"), Any: ("a value", "values")}
_BOUNDS = ((at.Ge, "ge", ">="), (at.Gt, "gt", ">"), (at.Le, "le", "<="), (at.Lt, "lt", "<"))


def expect(tp: Any, plural: bool = False) -> str:
    """What a schema type accepts, for a person: 'a non-empty list of integers >= 1'."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        meta = args[1:]
        if marks := [m for m in meta if isinstance(m, Expect)]:
            return marks[0].text
        bounds = [f"{sym} {getattr(m, attr)}" for m in meta for cls, attr, sym in _BOUNDS
                  if isinstance(m, cls)]
        text = " ".join([expect(args[0], plural), " and ".join(bounds)]).strip()
        empty_ok = not any(isinstance(m, at.MinLen) and m.min_length > 0 for m in meta)
        return text if empty_ok else text.replace("a list", "a non-empty list", 1)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (Union, UnionType):
        text = " or ".join(expect(a, plural) for a in args if a is not NoneType)
        return text + (" or null" if NoneType in args else "")
    if origin is tuple:
        return "a list of " + expect(args[0], plural=True)
    if origin is dict:
        return "a mapping of dotted keys to lists of values"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(tp.model_fields)
    return _WORDS.get(tp, (str(tp), str(tp)))[plural]


_DROP_ALIASES = ("rate", "drop_prob", "dropout_rate", "drop_rate", "dropout")
_KEEP_ALIASES = ("keep", "dropout_keep_ratio")  # the latter is cs231n's (2020 on)
_SYNONYMS = {"lr": "learning_rate", "weight_decay": "reg", "l2": "reg", "num_epochs": "epochs",
             "weight_scale": "weight_init", "hidden_sizes": "hidden_dims", "norm": "normalization"}


def path_problem(path: str, value: Any, style: str) -> str | None:
    """Why a dotted path (from --set or sweep:) is not a setting, or None if it is one."""
    if path in config_paths():
        return None
    if path == "sweep":
        return "the sweep grid is not a setting; give its axes as `dropcli sweep --set KEY=V1,V2`"
    if path in SECTIONS:
        first = next(iter(SECTIONS[path].model_fields))
        return f"is a section, not a setting; give a setting such as {path}.{first}"
    return unknown_key(tuple(path.split(".")), value, style)


def unknown_key(loc: tuple, value: Any, style: str) -> str:
    """An unknown key: the keep_prob aliases get their equivalent, typos a did-you-mean."""
    *parents, key = loc
    if tuple(parents) in ((), ("dropout",)) and key in (*_DROP_ALIASES, *_KEEP_ALIASES, "p"):
        # at the top level, a file needs the section too: `dropout.keep_prob: 0.8`
        return _alias_message(key, value, "dotted" if style == "file" and not parents else style)
    paths = config_paths()
    model = _unwrap(_locate(tuple(parents))[0]) if parents else Config
    is_model = isinstance(model, type) and issubclass(model, BaseModel)
    siblings = list(model.model_fields) if is_model else []
    prefix = "" if style == "file" else "".join(f"{p}." for p in parents)
    target = _SYNONYMS.get(str(key), str(key))
    if hint := difflib.get_close_matches(target, siblings, n=1):
        return f"unknown key; did you mean '{prefix}{hint[0]}'?"
    elsewhere = [p for p in paths if p.rsplit(".", 1)[-1] == target]
    if not siblings:  # the parents are not a section either: match the whole path
        elsewhere = elsewhere or difflib.get_close_matches(".".join(map(str, loc)), paths, n=1)
    if hint := elsewhere:
        return f"unknown key; did you mean '{hint[0]}'?"
    return f"unknown key; expected one of {', '.join(siblings or paths)}"


def _alias_message(key: str, value: Any, style: str) -> str:
    """`rate: 0.3` -> 'write keep_prob: 0.7 (= 1 - rate)', in the syntax of where it was written."""
    head = "dropcli calls this knob keep_prob (probability of keeping a unit)"
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not values or not numeric:
        return f"{head}; write {'keep_prob' if style == 'file' else 'dropout.keep_prob'} instead"

    def write(numbers: list) -> str:
        shown = show(numbers if isinstance(value, (list, tuple)) else numbers[0])
        return {"file": f"keep_prob: {shown}", "set": f"dropout.keep_prob={shown}"}.get(
            style, f"dropout.keep_prob: {shown}")

    flipped = [round(1 - v, 10) for v in values]
    if key == "p":
        return (f"{head}; p is ambiguous (cs231n used it for the keep probability one year and "
                f"the drop rate another): write {write(values)} if p was the keep probability, "
                f"{write(flipped)} if it was the drop rate")
    if key in _KEEP_ALIASES:
        return f"{head}; write {write(values)}"
    return f"{head}; write {write(flipped)} (= 1 - {key})"
