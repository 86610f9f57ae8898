"""The query parameters of the API's paginated lists, parsed in one place.

An offset past anything a database can hold (2**63) used to reach the SQL and answer 500 (SQLite: "datatype
mismatch", PostgreSQL: bigint out of range); no list here comes near MAX_OFFSET rows, so larger is refused.
"""

from __future__ import annotations

from rest_framework import serializers

MAX_OFFSET = 10**9


def limit_field(*, maximum: int, default: int = 50) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=maximum, default=default)


def offset_field() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)
