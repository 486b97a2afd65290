"""The shapes of a decision's reasoning. Their content comes from the Rust core: these classes
only make it read the way Python code (and the guide's alert code) expects."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Tuple


class Condition(str):
    """A rule that fired. It *is* its message (``f"- {condition}"`` prints the message) and
    keeps its structured fields: ``rule``, ``metric`` and ``message``, also readable as
    ``condition["rule"]``."""

    __slots__ = ("rule", "metric")
    rule: str
    metric: Optional[str]

    def __new__(cls, message: str, rule: str, metric: Optional[str] = None) -> "Condition":
        self = super().__new__(cls, message)
        self.rule = rule
        self.metric = metric
        return self

    @property
    def message(self) -> str:
        """The message, as a plain ``str``."""
        return str.__str__(self)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key == "message":
                return self.message
            if key in ("rule", "metric"):
                return getattr(self, key)
            raise KeyError(key)
        return str.__getitem__(self, key)

    def to_dict(self) -> Dict[str, Any]:
        """``{"rule": ..., "metric": ..., "message": ...}``."""
        return {"rule": self.rule, "metric": self.metric, "message": self.message}

    def __reduce__(self) -> Tuple[Any, ...]:
        return (Condition, (self.message, self.rule, self.metric))

    def __repr__(self) -> str:
        return f"Condition({self.message!r}, rule={self.rule!r}, metric={self.metric!r})"


class Reasoning(Dict[str, Any]):
    """The reasoning of a decision: a ``dict`` with the guide's keys (``decision``,
    ``primary_reason``, ``triggered_conditions``, ``comparisons``, ``recommendation``) and the
    whole evidence. The evidence is built from the Rust evaluation when first read, so judging
    stays cheap; ``json.dumps``, ``dict(...)`` and ``==`` see the complete dict."""

    __slots__ = ("_evaluation", "_loaded")
    _evaluation: Any
    _loaded: bool

    def _load(self) -> None:
        if not getattr(self, "_loaded", False):
            self._loaded = True
            evaluation = getattr(self, "_evaluation", None)
            if evaluation is not None:
                dict.update(self, evaluation.to_dict())

    def __getitem__(self, key: str) -> Any:
        self._load()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._load()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load()
        return dict.__len__(self)

    def __eq__(self, other: object) -> bool:
        self._load()
        if isinstance(other, Reasoning):
            other._load()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        self._load()
        return dict.__repr__(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self._load()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._load()
        dict.__delitem__(self, key)

    def __reduce__(self) -> Tuple[Any, ...]:
        self._load()
        return (dict, (dict(self),))

    def get(self, key: str, default: Any = None) -> Any:
        self._load()
        return dict.get(self, key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        self._load()
        return dict.keys(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._load()
        return dict.values(self)

    def items(self):  # type: ignore[no-untyped-def]
        self._load()
        return dict.items(self)

    def copy(self) -> Dict[str, Any]:
        self._load()
        return dict(dict.items(self))

    def pop(self, key: str, *default: Any) -> Any:
        self._load()
        return dict.pop(self, key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._load()
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._load()
        dict.update(self, *args, **kwargs)

    def to_markdown(self) -> str:
        """The evaluation for people, as Markdown (decision, evidence table, rules, queries)."""
        return str(self._evaluation.to_markdown())
