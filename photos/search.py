"""Full-text search of photos: their prompt, negative prompt, file name and model name, ranked.

Every word of the query must match the start of a word of the photo's text (so "lightho" finds "lighthouse";
only letters and digits count, so nothing a user types can be query syntax).

- PostgreSQL: `to_tsvector('simple', ...)` of the four columns, matched against a prefix `tsquery` and ranked
  with `ts_rank`; a GIN index on exactly that expression (migration 0004) makes the match an index lookup.
- SQLite: an FTS5 table, `photos_photo_fts`, kept up to date by triggers on the photo table (migration 0004),
  ranked with FTS5's bm25. FTS5 rows are keyed by an integer, which a photo's UUID is not: `photos_photo_fts_key`
  gives each photo one (an INTEGER PRIMARY KEY, which VACUUM keeps, unlike an ordinary table's rowid).

SQLite drops a table's triggers when Django rebuilds it (some column changes do): a migration that does so
must call `install_sqlite_triggers` again, as 0004 does.
"""

# ruff: noqa: S608 -- the SQL here is assembled from this module's constants only; queries are parameters.
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, SearchVectorExact
from django.db import connection
from django.db.models import F, Func, Q, QuerySet, Value
from django.db.models.expressions import RawSQL

if TYPE_CHECKING:  # migrations import this module: it must not load the current models itself
    from .models import Photo

FIELDS = ("generation_prompt", "generation_negative_prompt", "filename", "model_name")
MAX_TERMS = 8
FTS_TABLE = "photos_photo_fts"
FTS_KEYS = "photos_photo_fts_key"
# Letters and digits; "_" separates words, as both databases' tokenizers have it.
WORD = re.compile(r"[^\W_]+")


def terms(query: str) -> list[str]:
    """The words searched for: letters and digits, lower case, at most MAX_TERMS."""
    return [word.lower() for word in WORD.findall(query)][:MAX_TERMS]


def vector() -> SearchVector:
    """The photo's text as PostgreSQL indexes it. PostgreSQL's parser reads "Harbour_Evening.JPG" or
    "sd_xl_base_1.0.safetensors" as one file-name token; spaces for their separators make them words."""
    words = [
        Func(F(field), Value("_.-/\\"), Value("     "), function="translate") for field in ("filename", "model_name")
    ]
    return SearchVector("generation_prompt", "generation_negative_prompt", *words, config="simple")


def _tsquery(words: list[str]) -> SearchQuery:
    return SearchQuery(" & ".join(f"{word}:*" for word in words), config="simple", search_type="raw")


def _fts_match(words: list[str]) -> str:
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


def matching(queryset: QuerySet[Photo], words: list[str]) -> QuerySet[Photo]:
    """The photos of `queryset` whose text has every word, annotated `search_rank` (higher is better)."""
    if connection.vendor == "postgresql":
        query = _tsquery(words)
        return queryset.annotate(search_document=vector(), search_rank=SearchRank(vector(), query)).filter(
            search_document=query
        )
    match = _fts_match(words)
    # A join, so SQLite starts from the FTS5 match and then looks the few photos up by primary key.
    return queryset.extra(  # noqa: S610 -- fixed SQL; the match is a parameter
        tables=[FTS_KEYS, FTS_TABLE],
        where=[
            f"{FTS_KEYS}.photo_id = photos_photo.id",
            f"{FTS_TABLE}.rowid = {FTS_KEYS}.id",
            f"{FTS_TABLE} MATCH %s",
        ],
        params=[match],
        select={"search_rank": f"-{FTS_TABLE}.rank"},
    )


def matches(words: list[str]) -> Q:
    """The condition of `matching` without its rank, usable where the photo table is aliased (a subquery)."""
    if connection.vendor == "postgresql":
        return Q(SearchVectorExact(vector(), _tsquery(words)))
    return Q(
        pk__in=RawSQL(  # noqa: S611 -- fixed SQL; the match is a parameter
            f"SELECT k.photo_id FROM {FTS_KEYS} k JOIN {FTS_TABLE} f ON f.rowid = k.id WHERE {FTS_TABLE} MATCH %s",
            [_fts_match(words)],
        )
    )


# --- SQLite's FTS5 table and its triggers (installed by migration 0004) ---

_DOCUMENT = " || ' ' || ".join(f"{{row}}.{field}" for field in FIELDS)
SQLITE_TABLES = [
    f"CREATE TABLE {FTS_KEYS} (id INTEGER PRIMARY KEY, photo_id char(32) NOT NULL UNIQUE)",
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(document, tokenize = 'unicode61 remove_diacritics 2')",
]
_KEY_OF = f"(SELECT id FROM {FTS_KEYS} WHERE photo_id = {{row}}.id)"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER photos_search_insert AFTER INSERT ON photos_photo BEGIN
        INSERT INTO {FTS_KEYS} (photo_id) VALUES (NEW.id);
        INSERT INTO {FTS_TABLE} (rowid, document) VALUES (last_insert_rowid(), {_DOCUMENT.format(row="NEW")});
    END""",
    f"""CREATE TRIGGER photos_search_delete AFTER DELETE ON photos_photo BEGIN
        DELETE FROM {FTS_TABLE} WHERE rowid = {_KEY_OF.format(row="OLD")};
        DELETE FROM {FTS_KEYS} WHERE photo_id = OLD.id;
    END""",
    f"""CREATE TRIGGER photos_search_update AFTER UPDATE OF {", ".join(FIELDS)} ON photos_photo BEGIN
        UPDATE {FTS_TABLE} SET document = {_DOCUMENT.format(row="NEW")} WHERE rowid = {_KEY_OF.format(row="NEW")};
    END""",
]
_SQLITE_TRIGGER_NAMES = ("photos_search_insert", "photos_search_delete", "photos_search_update")


def install_sqlite_triggers(schema_editor: Any) -> None:
    """(Re)create the triggers that keep the FTS5 table in step with the photos."""
    for name in _SQLITE_TRIGGER_NAMES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in SQLITE_TRIGGERS:
        schema_editor.execute(statement)


def install(schema_editor: Any, photo_model: type[Photo]) -> None:
    """Create the search index of the database in use and fill it with the photos there are."""
    if schema_editor.connection.vendor == "postgresql":
        from django.contrib.postgres.indexes import GinIndex

        # Without GIN's pending list: an upload then costs a little more, but a search right after a bulk
        # import does not have to read thousands of unmerged entries (measured: 20 ms -> 0.2 ms at 100k).
        schema_editor.add_index(photo_model, GinIndex(vector(), name="photo_search", fastupdate=False))
        return
    for statement in SQLITE_TABLES:
        schema_editor.execute(statement)
    schema_editor.execute(f"INSERT INTO {FTS_KEYS} (photo_id) SELECT id FROM photos_photo ORDER BY created_at")
    schema_editor.execute(
        f"INSERT INTO {FTS_TABLE} (rowid, document) SELECT k.id, {_DOCUMENT.format(row='p')} "
        f"FROM {FTS_KEYS} k JOIN photos_photo p ON p.id = k.photo_id"
    )
    install_sqlite_triggers(schema_editor)


def uninstall(schema_editor: Any, photo_model: type[Photo]) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS photo_search")
        return
    for name in _SQLITE_TRIGGER_NAMES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_KEYS}")
