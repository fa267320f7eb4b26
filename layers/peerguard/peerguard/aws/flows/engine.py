"""The embedded flow engine: DuckDB, in process, over local log files (plain or gzip).

DuckDB reads the files itself (gzip included, in parallel across files), splits, filters
and aggregates in its vectorised executor: Python never sees a record. Only the first
line of each file is read here, to learn its format from a header line.

No extension is loaded or downloaded (the wheel's statically linked parquet/json/icu are
all it has, and nothing here needs them): CIDR membership is integer ranges on the
addresses, computed in SQL (see `peerguard.aws.flows.sql`). Lambda-safe settings: the
home and spill directories under the temp directory, a memory limit, no insertion order.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import count
from pathlib import Path
from typing import Any

import duckdb

from peerguard.aws.flows.sql import KINDS, Group, aggregate_query, literal, sql_type
from peerguard.domain.flows.aggregates import (
    DEFAULT_EPHEMERAL_FROM,
    Counts,
    FlowAggregate,
    Window,
    WindowAggregates,
    seen_once,
)
from peerguard.domain.flows.crossing import Crossing, Direction
from peerguard.domain.flows.formats import (
    DEFAULT,
    Format,
    FormatError,
    column,
    looks_like_header,
    parse_header,
)

GZIP_MAGIC = b"\x1f\x8b"
# Lines are read whole: this byte never occurs in a flow log record.
LINE_DELIM = "\x1f"
# Files are read this many bytes at a time (a source's spool can hold one batch).
DEFAULT_BATCH_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class LogFile:
    """A file of flow log records on local disk.

    `format` is what the flow log declares (its LogFormat, or `--log-format`); a header
    line in the file wins over it. `observer` is the VPC whose flow log this is, when the
    source knows it. A `temporary` file was spooled by a source and is deleted once read.
    """

    path: Path
    format: Format | None = None
    observer: str | None = None
    temporary: bool = False


@dataclass(frozen=True)
class _Sniffed:
    file: LogFile
    format: Format
    gzip: bool
    header: bool
    size: int


def _first_line(path: Path, is_gzip: bool) -> str:
    opener: Any = gzip.open if is_gzip else open
    try:
        with opener(path, "rb") as f:
            return bytes(f.readline(65536)).decode("utf-8", "replace").strip()
    except (OSError, EOFError):
        return ""  # unreadable or truncated: DuckDB's reader counts what it can


def sniff(lf: LogFile) -> _Sniffed:
    with open(lf.path, "rb") as f:
        is_gzip = f.read(2) == GZIP_MAGIC
    first = _first_line(lf.path, is_gzip)
    header = looks_like_header(first)
    fmt = parse_header(first) if header else (lf.format or DEFAULT)
    if not fmt.analysable:
        raise FormatError(f"{lf.path}: format {fmt} names no source and destination addresses")
    return _Sniffed(lf, fmt, is_gzip, header, lf.path.stat().st_size)


def batches(files: Iterable[LogFile], limit: int) -> Iterator[list[_Sniffed]]:
    """Consecutive files, at most `limit` bytes a batch (a bigger file is a batch alone)."""
    batch: list[_Sniffed] = []
    size = 0
    for lf in files:
        s = sniff(lf)
        if batch and size + s.size > limit:
            yield batch
            batch, size = [], 0
        batch.append(s)
        size += s.size
    if batch:
        yield batch


def _gunzip_prefix(src: Path, dst: Path) -> int:
    """Decompress what can be of a (truncated) gzip file into `dst`; the bytes written."""
    dec = zlib.decompressobj(wbits=31)
    written = 0
    with open(src, "rb") as f, open(dst, "wb") as out:
        while chunk := f.read(1 << 20):
            try:
                data = dec.decompress(chunk)
            except zlib.error:
                break
            out.write(data)
            written += len(data)
        # The last line of a cut stream is cut too: it is counted as malformed.
    return written


def connect(
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_dir: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB set up for Lambda: no extension loading, spills under /tmp."""
    tmp = Path(temp_dir or tempfile.gettempdir())
    config: dict[str, Any] = {
        "threads": threads or os.cpu_count() or 1,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "preserve_insertion_order": False,
        "home_directory": str(tmp),
        "temp_directory": str(tmp / "peerguard-duckdb"),
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    return duckdb.connect(":memory:", config=config)


def lambda_memory_limit() -> str | None:
    """Half the function's memory for DuckDB (the rest is Python, boto3 and the spool)."""
    mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    return f"{int(mb) // 2}MB" if mb and mb.isdigit() else None


class Engine:
    """Aggregates flow log files with DuckDB. One connection, reused across calls."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection | None = None,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.con = con or connect(memory_limit=lambda_memory_limit())
        self.batch_bytes = batch_bytes
        self._ids = count()
        self.unreadable: list[str] = []  # files (or their ends) no reader could take

    @staticmethod
    def relation(
        paths: Sequence[Path],
        fmt: Format,
        *,
        is_gzip: bool,
        header: bool,
        columns: bool,
        rejects: str,
    ) -> str:
        """A `read_csv` of the files; the lines it cannot read go to table `rejects`.

        `columns`: typed fields, strictly (a line of another shape is refused and
        counted); else whole lines, which nothing but an unreadable byte can refuse.
        """
        files = ", ".join(literal(str(p)) for p in paths)
        common = (
            "auto_detect=false, quote='', escape='', "
            f"compression='{'gzip' if is_gzip else 'none'}', ignore_errors=true, "
            f"store_rejects=true, rejects_table='{rejects}_errors', "
            f"rejects_scan='{rejects}_scans'"
        )
        if not columns:
            return (
                f"read_csv([{files}], delim='{LINE_DELIM}', header=false, "
                f"columns={{'line': 'VARCHAR'}}, strict_mode=false, {common})"
            )
        types = ", ".join(f"'{column(f)}': '{sql_type(f)}'" for f in fmt.fields)
        return (
            f"read_csv([{files}], delim=' ', header=false, skip={1 if header else 0}, "
            f"columns={{{types}}}, nullstr='-', strict_mode=true, new_line='\\n', {common})"
        )

    def groups(self, batch: Sequence[_Sniffed], *, columns: bool) -> tuple[list[Group], list[str]]:
        by_key: dict[tuple[Format, str | None, bool, bool], list[Path]] = {}
        for s in batch:
            key = (s.format, s.file.observer, s.gzip, s.header and columns)
            by_key.setdefault(key, []).append(s.file.path)
        groups, rejects = [], []
        for (fmt, observer, is_gzip, header), paths in by_key.items():
            name = f"pg_rejects_{next(self._ids)}"
            rejects.append(name)
            rel = self.relation(
                paths, fmt, is_gzip=is_gzip, header=header, columns=columns, rejects=name
            )
            groups.append(Group(rel, fmt, observer, columns=columns))
        return groups, rejects

    def _query(
        self,
        batch: Sequence[_Sniffed],
        cs: Sequence[Crossing],
        window: Window,
        e: int,
        *,
        columns: bool,
    ) -> tuple[list[Seen], Counts]:
        groups, rejects = self.groups(batch, columns=columns)
        try:
            rows = self.run(aggregate_query(groups, cs, window, ephemeral_from=e))
        finally:
            rejected = self._rejected(rejects)
        seen, counts = parse_rows(rows)
        return seen, counts + Counts(malformed=rejected)

    def _aggregate(
        self,
        batch: Sequence[_Sniffed],
        cs: Sequence[Crossing],
        window: Window,
        ephemeral_from: int,
    ) -> tuple[list[Seen], Counts]:
        """One batch, never fatal for the others.

        Typed columns first; whole lines for a file DuckDB's reader cannot take (mixed
        line endings). A batch that fails is read file by file, and a file that still
        fails is salvaged (a truncated gzip object: what decompresses) or set aside in
        `self.unreadable` with the reason.
        """
        try:
            return self._query(batch, cs, window, ephemeral_from, columns=True)
        except duckdb.InvalidInputException:
            pass
        except duckdb.Error:
            if len(batch) > 1:
                return self._one_by_one(batch, cs, window, ephemeral_from)
        try:
            return self._query(batch, cs, window, ephemeral_from, columns=False)
        except duckdb.Error as err:
            if len(batch) > 1:
                return self._one_by_one(batch, cs, window, ephemeral_from)
            return self._salvage(batch[0], err, cs, window, ephemeral_from)

    def _one_by_one(
        self, batch: Sequence[_Sniffed], cs: Sequence[Crossing], window: Window, e: int
    ) -> tuple[list[Seen], Counts]:
        seen: list[Seen] = []
        counts = Counts()
        for s in batch:
            more, counted = self._aggregate([s], cs, window, e)
            seen += more
            counts = counts + counted
        return seen, counts

    def _salvage(
        self, s: _Sniffed, err: Exception, cs: Sequence[Crossing], window: Window, e: int
    ) -> tuple[list[Seen], Counts]:
        reason = str(err).splitlines()[0]
        if s.gzip:
            plain = Path(tempfile.mkstemp(prefix="peerguard-salvage-", suffix=".log")[1])
            try:
                got = _gunzip_prefix(s.file.path, plain)
                copy = _Sniffed(LogFile(plain, s.format, s.file.observer), s.format, False,
                                s.header, plain.stat().st_size)  # fmt: skip
                result = self._query([copy], cs, window, e, columns=False)
                self.unreadable.append(f"{s.file.path}: {reason} (read the first {got} bytes)")
                return result
            except duckdb.Error:
                pass
            finally:
                plain.unlink(missing_ok=True)
        self.unreadable.append(f"{s.file.path}: {reason}")
        return [], Counts()

    def run(self, query: str) -> list[tuple[Any, ...]]:
        return self.con.execute(query).fetchall()

    def _rejected(self, names: Iterable[str]) -> int:
        total = 0
        for n in names:
            try:
                row = self.con.execute(
                    f"SELECT count(DISTINCT (scan_id, file_id, line)) FROM {n}_errors"
                ).fetchone()
            except duckdb.CatalogException:
                continue  # nothing was rejected: DuckDB made no table
            total += int(row[0]) if row else 0
            self.con.execute(f"DROP TABLE IF EXISTS {n}_errors")
            self.con.execute(f"DROP TABLE IF EXISTS {n}_scans")
        return total

    def analyse(
        self,
        files: Iterable[LogFile],
        cs: Sequence[Crossing],
        window: Window,
        *,
        observed: Iterable[str] = (),
        ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
    ) -> WindowAggregates:
        """Aggregate every record of `files` that crosses one of the peerings `cs`.

        `observed` adds VPCs whose flow logs are read elsewhere (another call, another
        engine) to those of `files`: a flow they log too is counted there, not here.
        """
        observers = set(observed)
        self.unreadable = []
        seen: list[Seen] = []
        counts = Counts()
        for batch in batches(files, self.batch_bytes):
            observers |= {s.file.observer for s in batch if s.file.observer}
            try:
                batch_seen, batch_counts = self._aggregate(batch, cs, window, ephemeral_from)
            finally:
                for s in batch:
                    if s.file.temporary:
                        s.file.path.unlink(missing_ok=True)
            seen.extend(batch_seen)
            counts = counts + batch_counts
        flows, copies = seen_once(seen, cs, observers)
        counts = replace(counts, flows=counts.flows - copies, seen_twice=copies)
        return WindowAggregates(
            window, tuple(cs), flows, counts, engine="duckdb", unreadable=tuple(self.unreadable)
        )


Seen = tuple[FlowAggregate, str | None]  # an aggregate and the side whose log had it


def parse_rows(rows: Iterable[Sequence[Any]]) -> tuple[list[Seen], Counts]:
    """The query's rows as aggregates (with where they were seen) and counts.

    DuckDB gives typed values; Athena gives strings (and None for NULL): both are read.
    """
    flows: list[Seen] = []
    counted = dict.fromkeys(KINDS, 0)
    directions = {d.value: d for d in Direction}
    make = FlowAggregate._make
    for row in rows:
        kind, pcx, direction, start, src, dst, port, proto, action, reply, pk, by, n, at = row
        n = int(n)
        try:
            counted[kind] += n
        except KeyError:
            raise ValueError(f"unexpected row kind {kind!r}") from None
        if kind != "flow":
            continue
        if isinstance(start, int):  # DuckDB: already typed
            values = (pcx, directions[direction], start, src, dst, port, proto, action,
                      reply == 1, pk or 0, by or 0, n)  # fmt: skip
        else:
            values = (
                str(pcx),
                directions[direction],
                int(start),
                str(src),
                str(dst),
                _int(port),
                _int(proto),
                None if action in (None, "") else str(action),
                _int(reply) == 1,
                _int(pk) or 0,
                _int(by) or 0,
                n,
            )
        flows.append((make(values), at or None))
    counted["flows"] = counted.pop("flow")
    return flows, Counts.of(counted)


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def analyse(
    files: Iterable[LogFile],
    cs: Sequence[Crossing],
    window: Window,
    *,
    observed: Iterable[str] = (),
    ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
    engine: Engine | None = None,
) -> WindowAggregates:
    """`Engine().analyse(...)` with a connection made for the call when none is given."""
    return (engine or Engine()).analyse(
        files, cs, window, observed=observed, ephemeral_from=ephemeral_from
    )
