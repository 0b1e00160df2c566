"""Keyset pages: a list of any length shown a page at a time, in id order. A page is found by the
last id of the previous one (an index range scan), never by an offset the database counts up to."""

from django.db.models import QuerySet


def keyset_page(rows: QuerySet, after: int | None, limit: int, newest_first: bool = False) -> tuple[list, int | None]:
    """The rows after id `after` (all from the start when None), at most `limit`, and the `after`
    of the next page (None on the last page). `newest_first`: descending ids, "after" is below."""
    if after is not None:
        rows = rows.filter(id__lt=after) if newest_first else rows.filter(id__gt=after)
    found = list(rows.order_by("-id" if newest_first else "id")[: limit + 1])  # one extra: is there more?
    page = found[:limit]
    return page, (page[-1].id if len(found) > limit else None)


# The largest integer PostgreSQL's bigint and SQLite's INTEGER hold: an id or position past it is a
# database error (a 500) if it reaches a query, so query parameters are checked against it first.
MAX_DB_INT = 2**63 - 1


def int_param(value: str | None) -> int | None:
    """A non-negative integer query or form parameter that a database integer holds, or None
    (missing, not a number, negative or too large)."""
    try:
        number = int(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= MAX_DB_INT else None


def after_param(value: str | None) -> int | None:
    """The `after` query parameter: an id, or None (a bad value starts from the top)."""
    return int_param(value)
