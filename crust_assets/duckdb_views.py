"""A DuckDB database of views over the warehouse: open it and query, nothing copied.

The views read the hive-partitioned Parquet files, so the database stays current without being
rebuilt; `contacts_duckdb` rebuilds it only when a table appears. No Dagster here.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from crust_assets.storage import PARTITION_FILE, DataLayout, configured_file_mode

DUCKDB_FILE = "contacts.duckdb"


def duckdb_view_sql(layout: DataLayout) -> dict[str, str]:
    """The views, over the hive-partitioned files: always current, nothing copied.

    On a remote root they name `s3://...` URLs: a connection needs that filesystem (an fsspec
    one registered with `register_filesystem`, or DuckDB's httpfs) to query them.
    """

    def glob(dataset: str) -> str:
        return layout.url(layout.warehouse_dataset(dataset) / "*" / "*.parquet").replace("'", "''")

    latest = layout.url(layout.warehouse_dataset("contacts_latest") / PARTITION_FILE)
    latest = latest.replace("'", "''")
    return {
        "enriched_contacts": (
            f"SELECT * FROM read_parquet('{glob('enriched_contacts')}', hive_partitioning = true,"
            " hive_types = {'date': DATE}, union_by_name = true)"
        ),
        "contact_coverage": (
            f"SELECT * FROM read_parquet('{glob('contact_coverage')}', hive_partitioning = true,"
            " hive_types = {'date': DATE})"
        ),
        "rejected_urls": (
            f"SELECT * FROM read_parquet('{glob('rejected_urls')}', hive_partitioning = true,"
            " hive_types = {'date': DATE})"
        ),
        "contacts_latest": f"SELECT * FROM read_parquet('{latest}')",
    }


def present_views(layout: DataLayout) -> dict[str, str]:
    """The views of the tables that have files yet (a view of no file fails when queried)."""
    return {
        name: sql
        for name, sql in duckdb_view_sql(layout).items()
        if layout.glob(layout.warehouse_dataset(name), "**/*.parquet")
    }


def build_database(layout: DataLayout, views: dict[str, str], path: Path) -> dict[str, int]:
    """Create the database at a local `path` with `views`; returns each view's row count, read
    through the same filesystem the views name (fsspec's, on an object store)."""
    import duckdb

    with private_build_path(path) as built:
        connection = duckdb.connect(str(built))
        try:
            if not layout.is_local:
                connection.register_filesystem(layout.fs)
            for name, sql in views.items():
                connection.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
            return {
                name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                for name in views
            }
        finally:
            connection.close()


@contextlib.contextmanager
def private_build_path(path: Path) -> Iterator[Path]:
    """A path for a file that DuckDB creates itself, in an owner-only directory beside `path`;
    on success the finished file (CRUST_FILE_MODE) is moved to `path`.

    DuckDB refuses a file created beforehand with the right mode, and makes its file and its
    `.wal` with the process umask (0644 under the usual 022): inside a 0700 directory nobody
    else can open them while they are built. Beside `path`, so the move is a rename.
    """
    with tempfile.TemporaryDirectory(prefix=".duckdb-build-", dir=path.parent) as private:
        built = Path(private) / path.name  # mkdtemp makes the directory 0700 whatever the umask
        yield built
        os.chmod(built, configured_file_mode())
        os.replace(built, path)


def duckdb_open_note(layout: DataLayout, target: str) -> str:
    """How to open the database: directly when local; with the filesystem registered when not."""
    if layout.is_local:
        return f"```\nduckdb {target}\nSELECT * FROM contacts_latest LIMIT 10;\n```"
    protocol = target.split("://", 1)[0]
    return (
        "The views read the Parquet files from the object store: query them with that "
        "filesystem registered (same credentials and endpoint env vars as the pipeline), or "
        "ATTACH the file with DuckDB's httpfs extension and an S3 secret.\n"
        f"```python\nimport duckdb, fsspec\nfs = fsspec.filesystem({protocol!r})\n"
        f"fs.get({target!r}, 'contacts.duckdb')\n"
        "con = duckdb.connect('contacts.duckdb', read_only=True)\n"
        "con.register_filesystem(fs)\n"
        "con.sql('SELECT * FROM contacts_latest LIMIT 10').show()\n```"
    )
