"""Does a table's columns match what a contract's ``data:`` schema declares?

    >>> from pytest_cursus.data.schema import ColumnSpec
    >>> compare_to_schema({"amount": ColumnSpec(type="float")}, {"amount": "string"})
    ["column 'amount': expected float, found string"]

The rules, in the order a reader (pandas, pyarrow) makes them necessary:

* Extra columns are fine: a step may write more than the next one reads.
* A found ``"null"`` column (no values in the sample, e.g. a header-only CSV) matches any type.
* ``int`` data may be found as ``float`` only when the schema allows nulls (``nulls > 0``):
  pandas turns an int column with missing values into floats and writes them as ``1.0``, so a
  real upstream step produces exactly that. With ``nulls: 0`` a float is a mismatch.
* ``float`` data may be found as ``int``: whole-number floats read back as ints (``5`` not ``5.0``).
* A ``category`` column is expected as the type of its values (see ``ColumnSpec.category_kind``:
  ints -> int, strings -> string, ...), under the same rules.
"""

from __future__ import annotations

from pytest_cursus.data.schema import ColumnSpec, DataSchema


def expected_type(column: ColumnSpec) -> str:
    """The logical type a reader should find for a declared column."""
    return column.category_kind() if column.type == "category" else column.type


def is_compatible(column: ColumnSpec, found: str) -> bool:
    expected = expected_type(column)
    if found in (expected, "null"):
        return True
    if expected == "float" and found == "int":
        return True
    return expected == "int" and found == "float" and column.nulls > 0


def compare_to_schema(schema: DataSchema | dict[str, ColumnSpec], found: dict[str, str]) -> list[str]:
    """Human-readable differences between declared and found columns, in schema order; ``[]`` if none."""
    columns = schema.columns if isinstance(schema, DataSchema) else schema
    problems: list[str] = []
    for name, column in columns.items():
        if name not in found:
            problems.append(f"missing column {name!r} (expected {expected_type(column)})")
        elif not is_compatible(column, found[name]):
            problems.append(f"column {name!r}: expected {expected_type(column)}, found {found[name]}")
    return problems
