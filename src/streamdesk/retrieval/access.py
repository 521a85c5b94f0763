"""The access rule, in one place: a principal's scope as a predicate that renders to SQL and evaluates in Python.

Both the SQL `WHERE` clause that every search runs under and the pure-Python check used as the test
oracle are produced from the same `Predicate` tree, so they cannot drift apart.

The rule: the tenant must match; `public` documents are readable by everyone; `internal` ones by
employees (a user with an employee role) but not by the agent acting for a customer, unless
`customer_agent_reads_internal` is set; `restricted` ones only by users whose groups intersect the
document's `access_groups`.
"""

from __future__ import annotations

import hashlib
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from streamdesk.identity.models import PrincipalBase
from streamdesk.retrieval.config import RetrievalSettings
from streamdesk.retrieval.models import Filters

Row = Mapping[str, Any]


class Predicate(ABC):
    """A boolean condition over a chunk row."""

    @abstractmethod
    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        """The condition as SQL with `%s` placeholders, and their values in order."""

    @abstractmethod
    def allows(self, row: Row) -> bool:
        """Whether `row` (column name -> value) satisfies the condition, with SQL's NULL semantics."""

    def describe(self) -> str:
        """The condition with its values inlined, for results and the audit trail."""
        text, params = self.sql()
        return text.replace("%s", "{}").format(*(_show(p) for p in params))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "'{" + ",".join(str(v) for v in value) + "}'"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return repr(value) if isinstance(value, str) else str(value)


def _col(alias: str, column: str) -> str:
    return f"{alias}.{column}" if alias else column


@dataclass(frozen=True)
class Const(Predicate):
    """Always true or always false."""

    value: bool

    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        return ("true" if self.value else "false"), []

    def allows(self, row: Row) -> bool:
        return self.value


@dataclass(frozen=True)
class Comparison(Predicate):
    """`column <OPERATOR> value` (false for NULL); each subclass names its operator and the Python test."""

    OPERATOR: ClassVar[str]
    TEST: ClassVar[Callable[[Any, Any], bool]]

    column: str
    value: Any

    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        return f"{_col(alias, self.column)} {self.OPERATOR} %s", [self.value]

    def allows(self, row: Row) -> bool:
        return row[self.column] is not None and type(self).TEST(row[self.column], self.value)


class Eq(Comparison):
    """`column = value`."""

    OPERATOR = "="
    TEST = operator.eq


class AtLeast(Comparison):
    """`column >= value` (false for NULL)."""

    OPERATOR = ">="
    TEST = operator.ge


class Before(Comparison):
    """`column < value` (false for NULL)."""

    OPERATOR = "<"
    TEST = operator.lt


@dataclass(frozen=True)
class ArrayTest(Predicate):
    """`column <SQL> values`, the values sent as one text array; each subclass names its SQL and its Python test."""

    SQL: ClassVar[str]

    column: str
    values: tuple[Any, ...]

    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        return f"{_col(alias, self.column)} {self.SQL}", [list(self.values)]


class AnyOf(ArrayTest):
    """`column = ANY(values)`."""

    SQL = "= ANY(%s::text[])"

    def allows(self, row: Row) -> bool:
        return row[self.column] in self.values


class Overlaps(ArrayTest):
    """`column && values` for an array column: some element in common."""

    SQL = "&& %s::text[]"

    def allows(self, row: Row) -> bool:
        return bool(set(row[self.column] or ()) & set(self.values))


@dataclass(frozen=True)
class Junction(Predicate):
    """All (`AND`) or any (`OR`) of the parts."""

    op: str
    parts: tuple[Predicate, ...]

    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        texts, params = [], []
        for part in self.parts:
            text, values = part.sql(alias)
            texts.append(f"({text})" if isinstance(part, Junction) else text)
            params.extend(values)
        return f" {self.op} ".join(texts), params

    def allows(self, row: Row) -> bool:
        test = all if self.op == "AND" else any
        return test(part.allows(row) for part in self.parts)


def named_sql(predicate: Predicate, *, alias: str = "", prefix: str = "f") -> tuple[str, dict[str, Any]]:
    """The predicate as SQL with named placeholders (`%(f0)s`, ...) and their values."""
    text, values = predicate.sql(alias)
    pieces = text.split("%s")
    params = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return "".join(piece + (f"%({prefix}{i})s" if i < len(values) else "") for i, piece in enumerate(pieces)), params


def _junction(op: str, parts: Sequence[Predicate], *, unit: bool) -> Predicate:
    """`op` of `parts`, simplified: `Const(unit)` dropped, nested `op`s flattened, `Const(not unit)` absorbing."""
    kept = [q for p in parts if p != Const(unit) for q in (p.parts if isinstance(p, Junction) and p.op == op else (p,))]
    if Const(not unit) in kept:
        return Const(not unit)
    return kept[0] if len(kept) == 1 else Junction(op, tuple(kept)) if kept else Const(unit)


def all_of(*parts: Predicate) -> Predicate:
    """AND of `parts`, simplified (constants folded, a single part returned as is)."""
    return _junction("AND", parts, unit=True)


def any_of(*parts: Predicate) -> Predicate:
    """OR of `parts`, simplified (constants folded, a single part returned as is)."""
    return _junction("OR", parts, unit=False)


def one_of(column: str, values: Sequence[Any]) -> Predicate:
    """`column` equals one of `values` (false when there are none)."""
    unique = tuple(sorted(set(values)))
    if not unique:
        return Const(False)
    return Eq(column, unique[0]) if len(unique) == 1 else AnyOf(column, unique)


def reads_internal(principal: PrincipalBase, *, settings: RetrievalSettings) -> bool:
    """Whether the principal may read `internal` documents."""
    if principal.kind == "agent":
        return settings.customer_agent_reads_internal
    return bool(principal.roles & settings.employee_roles)


def readable_groups(principal: PrincipalBase) -> tuple[str, ...]:
    """The groups whose `restricted` documents the principal may read (none for the customer-facing agent)."""
    return () if principal.kind == "agent" else tuple(sorted(principal.groups))


def scope_predicate(principal: PrincipalBase, *, settings: RetrievalSettings) -> Predicate:
    """Every chunk the principal may read, as one predicate (the rule described in the module docstring)."""
    levels = ["public", "internal"] if reads_internal(principal, settings=settings) else ["public"]
    groups = readable_groups(principal)
    restricted = all_of(Eq("access_level", "restricted"), Overlaps("access_groups", groups)) if groups else Const(False)
    return all_of(Eq("tenant", principal.tenant), any_of(one_of("access_level", levels), restricted))


def filter_predicate(filters: Filters) -> Predicate:
    """The metadata filters as one predicate (true when there are none)."""
    parts: list[Predicate] = []
    if filters.tenant is not None:
        parts.append(Eq("tenant", filters.tenant))
    if filters.sources:
        parts.append(one_of("source", sorted(filters.sources)))
    if filters.doc_types:
        parts.append(one_of("doc_type", sorted(filters.doc_types)))
    if filters.occurred_after is not None:
        parts.append(AtLeast("occurred_at", filters.occurred_after))
    if filters.occurred_before is not None:
        parts.append(Before("occurred_at", filters.occurred_before))
    return all_of(*parts)


def search_predicate(principal: PrincipalBase, filters: Filters, *, settings: RetrievalSettings) -> Predicate:
    """What a search may return: the principal's scope narrowed by the filters."""
    return all_of(scope_predicate(principal, settings=settings), filter_predicate(filters))


def scope_key(principal: PrincipalBase, *, settings: RetrievalSettings) -> str:
    """A stable fingerprint of the principal's scope: equal keys mean exactly the same readable chunks."""
    return hashlib.sha256(scope_predicate(principal, settings=settings).describe().encode()).hexdigest()
