"""
test_pg_schema.py - the SQLite schema (queue/schema/NNN_name.sql) and its
PostgreSQL twin (queue/schema/pg/NNN_name.sql) stay in step (issue 13,
doc/postgresql.md).

Both sets of migrations are applied in order, each in one transaction: the
PostgreSQL ones to a database of a throwaway cluster (pgcluster.py), the
SQLite ones to a temp file through Python's sqlite3 (the same library the
daemon links). Then both catalogs are read and compared:

  - the same migration files, by number and name;
  - the same tables;
  - per table, the same columns in the same order, with compatible types
    (TYPES below), the same NOT NULL and the same defaults;
  - the same primary keys, UNIQUE constraints, foreign keys (columns,
    referenced table and columns, ON DELETE) and CHECK constraints;
  - the same indexes: name, table, uniqueness, key columns with their
    order (DESC), and the partial-index predicate;
  - the same triggers, by name.

A difference fails the test with one line per difference. The explicit
exceptions (EXCEPTIONS) each carry their reason.

The PostgreSQL schema is also built the way the daemon's code builds it:
tests/pgmigrate runs pg_migrate() (queue/pg_migrate.c) with the migrations
embedded in the binary, and the result must be the psql-built catalog plus
the runner's schema_version table, with one row per migration file. test_compare_catches_drift
proves the comparison fails on drift, so a broken reader cannot pass in
silence.

Skipped, with the reason printed, only when PostgreSQL's server binaries
are missing.
"""

import re
import sqlite3

import pytest

import subprocess

from conftest import BUILDDIR
from pgcluster import SRCDIR

SQLITE_DIR = SRCDIR / "queue" / "schema"
PG_DIR = SQLITE_DIR / "pg"
PGMIGRATE = BUILDDIR / "tests" / "pgmigrate"

# SQLite's declared type -> the PostgreSQL types that may stand for it.
# INTEGER is BIGINT (64-bit ids and millisecond times; 0/1 flags stay
# integers so the queries need no change); INTEGER would do for small ones.
TYPES = {
    "INTEGER": {"bigint", "integer"},
    "TEXT": {"text"},
    "BLOB": {"bytea"},
    "REAL": {"double precision"},
}

# What exists on one side only, on purpose.
FTS_REASON = ("full-text search: SQLite's FTS5 table conversation_fts (with "
              "its shadow tables and the triggers that feed it) is, on "
              "PostgreSQL, the GIN index conversation_fts over "
              "to_tsvector('od_search', body) of conversation messages, "
              "which needs no triggers")
EXCEPTIONS = {
    "sqlite_tables": {
        "conversation_fts": FTS_REASON,
        "conversation_fts_data": FTS_REASON,
        "conversation_fts_idx": FTS_REASON,
        "conversation_fts_docsize": FTS_REASON,
        "conversation_fts_config": FTS_REASON,
    },
    "sqlite_triggers": {
        "conversation_fts_insert": FTS_REASON,
        "conversation_fts_link": FTS_REASON,
        "conversation_fts_unlink": FTS_REASON,
        "conversation_fts_delete": FTS_REASON,
    },
    "pg_indexes": {
        "login_failures_last": "the index of login_failures (below)",
        "messages_sending": (
            "the ended leases every node reclaims, in lease_until order "
            "(queue/pg_queue.c); one SQLite node finds its few rows in "
            "flight through messages_status, only when it starts "
            "(015_sending_index.sql)"),
        "conversation_fts": FTS_REASON,
    },
    "pg_triggers": {
        "messages_conversation_new": (
            "the 'message' events of conversation messages, written with "
            "each change by any node (012_message_events.sql); SQLite "
            "publishes them from queue.c's queue_observe() hook"),
        "messages_conversation_status": (
            "the same, for each state change"),
    },
    "pg_tables": {
        "login_failures": (
            "failed logins counted by every node (014_login_failures.sql, "
            "queue/store_logins_pg.c); one SQLite node counts them in its "
            "memory"),
        "schema_version": ("the version bookkeeping of queue/pg_migrate.c, "
                           "created by the runner itself (SQLite keeps its "
                           "version in PRAGMA user_version)"),
    },
}


def migrations(d):
    return sorted(p.name for p in d.glob("[0-9][0-9][0-9]_*.sql"))


# ---- normalization ---------------------------------------------------------

def strip_comments(sql):
    return re.sub(r"--[^\n]*", "", sql)


def norm_expr(e):
    """
    One spelling for a predicate or CHECK expression of either database:
    PostgreSQL's "x = ANY (ARRAY['a'::text, 'b'::text])" and SQLite's
    "x IN ('a', 'b')" both become "xin'a','b'"; casts, parentheses, spaces
    and case do not count. A test of one column against a set of string
    constants, as an IN list or as a chain of "x = 'a' OR x = 'b'" (the
    form of SQLite's messages.status CHECK since 010_status_check.sql),
    becomes "x in {'a','b'}" with the values sorted: the same set compares
    equal in either form and order, a different set does not.
    """
    if e is None:
        return None
    e = re.sub(r"::[a-z]+( [a-z]+)?(\[\])?", "", e)
    e = re.sub(r"=\s*ANY\s*\(\s*ARRAY\s*\[(.*?)\]\s*\)", r" IN (\1)", e,
               flags=re.S)
    vs = value_set(e)
    if vs is not None:
        return vs
    e = re.sub(r"[\s()]", "", e)
    return e.lower()


def value_set(e):
    """
    "x in {'a','b'}" for "x IN ('a', 'b')" or "x = 'a' OR x = 'b'" (two
    or more terms, one column x, parentheses anywhere); None for anything
    else. The values keep their case: 'a' and 'A' are different states.
    """
    flat = re.sub(r"[()]", " ", e).strip()
    m = re.fullmatch(r"(\w+)\s+IN\s+(.*)", flat, re.S | re.I)
    if m:
        col = m.group(1)
        vals = [v.strip() for v in m.group(2).split(",")]
    else:
        terms = [re.fullmatch(r"\s*(\w+)\s*=\s*('[^']*')\s*", t)
                 for t in re.split(r"\s+OR\s+", flat, flags=re.I)]
        if len(terms) < 2 or not all(terms) or \
                len({t.group(1).lower() for t in terms}) != 1:
            return None
        col = terms[0].group(1)
        vals = [t.group(2) for t in terms]
    if not all(re.fullmatch(r"'[^']*'", v) for v in vals):
        return None
    return "%s in {%s}" % (col.lower(), ",".join(sorted(vals)))


def norm_default(d):
    if d is None:
        return None
    d = re.sub(r"::[a-z]+( [a-z]+)?$", "", d.strip())
    while d.startswith("(") and d.endswith(")"):
        d = d[1:-1].strip()
    return d


def balanced(s, i):
    """The text inside the parentheses that open at s[i]."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return s[i + 1:j]
    raise ValueError("unbalanced parentheses in %r" % s[i:i + 80])


# ---- the two catalogs, in one shape ----------------------------------------
#
# {"tables": {name: {"columns": [(name, type, notnull, default)],
#                    "pk": (cols), "unique": {(cols)}, "fks": {(...)},
#                    "checks": {expr}}},
#  "indexes": {name: (table, unique, ((col, desc), ...), predicate)},
#  "triggers": {name: table}}


def sqlite_catalog(path):
    c = sqlite3.connect(str(path))
    try:
        out = {"tables": {}, "indexes": {}, "triggers": {}}
        for name, sql in c.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"):
            out["tables"][name] = sqlite_table(c, name, sql)
        for name, table in c.execute(
                "SELECT name, tbl_name FROM sqlite_master "
                "WHERE type = 'trigger'"):
            out["triggers"][name] = table
        for name, table, sql in c.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master "
                "WHERE type = 'index' AND sql IS NOT NULL"):
            out["indexes"][name] = sqlite_index(c, table, name, sql)
        return out
    finally:
        c.close()


def sqlite_table(c, name, sql):
    t = {"columns": [], "pk": (), "unique": set(), "fks": set(),
         "checks": set()}
    if sql.upper().startswith("CREATE VIRTUAL TABLE"):
        return t
    pk = []
    for _cid, col, typ, notnull, dflt, pkpos in c.execute(
            "PRAGMA table_info(%s)" % name):
        # A primary key column is NOT NULL on both sides (SQLite's rowid
        # alias reports notnull 0 but can never hold a NULL).
        t["columns"].append((col, typ.upper(), bool(notnull or pkpos),
                             norm_default(dflt)))
        if pkpos:
            pk.append((pkpos, col))
    t["pk"] = tuple(col for _, col in sorted(pk))
    for _seq, iname, unique, origin, _partial in c.execute(
            "PRAGMA index_list(%s)" % name):
        if origin == "u" and unique:
            t["unique"].add(tuple(r[2] for r in c.execute(
                "PRAGMA index_info(%s)" % iname)))
    fks = {}
    for fid, _seq, ref, frm, to, _upd, on_delete, _m in c.execute(
            "PRAGMA foreign_key_list(%s)" % name):
        f = fks.setdefault(fid, [ref, [], [], on_delete.upper()])
        f[1].append(frm)
        f[2].append(to)
    for ref, frm, to, on_delete in fks.values():
        t["fks"].add((tuple(frm), ref, tuple(to), on_delete))
    body = strip_comments(sql)
    for m in re.finditer(r"\bCHECK\s*\(", body, re.I):
        t["checks"].add(norm_expr(balanced(body, m.end() - 1)))
    return t


def sqlite_index(c, table, name, sql):
    unique = bool(re.match(r"\s*CREATE\s+UNIQUE\b", sql, re.I))
    cols = tuple((r[2], bool(r[3])) for r in c.execute(
        "PRAGMA index_xinfo(%s)" % name) if r[5])
    m = re.search(r"\bWHERE\b(.*)$", strip_comments(sql), re.I | re.S)
    return (table, unique, cols, norm_expr(m.group(1)) if m else None)


PG_TABLES = """
SELECT json_object_agg(t.relname, json_build_object(
  'columns', (SELECT json_agg(json_build_array(a.attname,
        format_type(a.atttypid, a.atttypmod), a.attnotnull,
        CASE WHEN a.attidentity <> '' THEN NULL
             ELSE pg_get_expr(d.adbin, d.adrelid) END)
      ORDER BY a.attnum)
    FROM pg_attribute a
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'constraints', (SELECT json_agg(json_build_array(k.contype,
        (SELECT json_agg(a.attname ORDER BY u.n) FROM unnest(k.conkey)
           WITH ORDINALITY u(num, n)
           JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num),
        k.confrelid::regclass::text,
        (SELECT json_agg(a.attname ORDER BY u.n) FROM unnest(k.confkey)
           WITH ORDINALITY u(num, n)
           JOIN pg_attribute a ON a.attrelid = k.confrelid
             AND a.attnum = u.num),
        k.confdeltype,
        pg_get_constraintdef(k.oid)))
    FROM pg_constraint k WHERE k.conrelid = t.oid)))
FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND t.relkind = 'r'
"""

PG_INDEXES = """
SELECT json_object_agg(i.relname, json_build_array(t.relname, x.indisunique,
  (SELECT json_agg(json_build_array(pg_get_indexdef(x.indexrelid, k, true),
        (x.indoption[k - 1] & 1) = 1) ORDER BY k)
     FROM generate_series(1, x.indnkeyatts) k),
  pg_get_expr(x.indpred, x.indrelid, true),
  EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)))
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public'
"""

PG_TRIGGERS = """
SELECT coalesce(json_object_agg(g.tgname, c.relname), '{}')
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND NOT g.tgisinternal
"""

PG_TYPE = {"bigint": "bigint", "integer": "integer", "text": "text",
           "bytea": "bytea", "double precision": "double precision"}
ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE",
             "n": "SET NULL", "d": "SET DEFAULT"}


def pg_catalog(cluster, url):
    out = {"tables": {}, "indexes": {}, "triggers": {}}
    for name, t in (cluster.json(url, PG_TABLES) or {}).items():
        tab = {"columns": [], "pk": (), "unique": set(), "fks": set(),
               "checks": set()}
        for col, typ, notnull, dflt in t["columns"] or []:
            tab["columns"].append((col, typ, bool(notnull),
                                   norm_default(dflt)))
        for contype, cols, ref, refcols, deltype, text in \
                t["constraints"] or []:
            if contype == "p":
                tab["pk"] = tuple(cols)
            elif contype == "u":
                tab["unique"].add(tuple(cols))
            elif contype == "f":
                tab["fks"].add((tuple(cols), ref, tuple(refcols),
                                ON_DELETE[deltype]))
            elif contype == "c":
                m = re.match(r"CHECK\s*", text)
                tab["checks"].add(norm_expr(text[m.end():]))
        out["tables"][name] = tab
    for name, (table, unique, cols, pred, constraint) in \
            (cluster.json(url, PG_INDEXES) or {}).items():
        if constraint:
            continue	# a PRIMARY KEY or UNIQUE constraint's own index
        out["indexes"][name] = (table, bool(unique),
                                tuple((c, bool(d)) for c, d in cols),
                                norm_expr(pred))
    out["triggers"] = cluster.json(url, PG_TRIGGERS) or {}
    return out


# ---- the comparison ----------------------------------------------------------

def compare(lite, pg):
    """Every difference between the two catalogs, one line each."""
    diffs = []
    ex = EXCEPTIONS
    lt = set(lite["tables"]) - set(ex["sqlite_tables"])
    pt = set(pg["tables"]) - set(ex["pg_tables"])
    for t in sorted(lt - pt):
        diffs.append("table %s: in SQLite only" % t)
    for t in sorted(pt - lt):
        diffs.append("table %s: in PostgreSQL only" % t)
    for t in sorted(lt & pt):
        diffs += compare_table(t, lite["tables"][t], pg["tables"][t])
    li = set(lite["indexes"])
    pi = set(pg["indexes"]) - set(ex["pg_indexes"])
    for i in sorted(li - pi):
        diffs.append("index %s: in SQLite only" % i)
    for i in sorted(pi - li):
        diffs.append("index %s: in PostgreSQL only" % i)
    for i in sorted(li & pi):
        if lite["indexes"][i] != pg["indexes"][i]:
            diffs.append("index %s: SQLite %r, PostgreSQL %r"
                         % (i, lite["indexes"][i], pg["indexes"][i]))
    lg = set(lite["triggers"]) - set(ex["sqlite_triggers"])
    pgt = set(pg["triggers"]) - set(ex["pg_triggers"])
    for g in sorted(lg ^ pgt):
        diffs.append("trigger %s: in %s only"
                     % (g, "SQLite" if g in lg else "PostgreSQL"))
    for g in sorted(lg & pgt):
        if lite["triggers"][g] != pg["triggers"][g]:
            diffs.append("trigger %s: on %s in SQLite, on %s in PostgreSQL"
                         % (g, lite["triggers"][g], pg["triggers"][g]))
    return diffs


def compare_table(t, a, b):
    diffs = []
    an = [c[0] for c in a["columns"]]
    bn = [c[0] for c in b["columns"]]
    if an != bn:
        diffs.append("table %s: columns differ:\n    SQLite     %s\n"
                     "    PostgreSQL %s" % (t, an, bn))
    bcols = {c[0]: c for c in b["columns"]}
    for name, typ, notnull, dflt in a["columns"]:
        if name not in bcols:
            continue
        _, ptyp, pnotnull, pdflt = bcols[name]
        if ptyp not in TYPES.get(typ, set()):
            diffs.append("column %s.%s: SQLite %s, PostgreSQL %s (allowed: "
                         "%s)" % (t, name, typ, ptyp,
                                  sorted(TYPES.get(typ, ()))))
        if notnull != pnotnull:
            diffs.append("column %s.%s: NOT NULL in %s only"
                         % (t, name, "SQLite" if notnull else "PostgreSQL"))
        if dflt != pdflt:
            diffs.append("column %s.%s: default %r in SQLite, %r in "
                         "PostgreSQL" % (t, name, dflt, pdflt))
    for what in ("pk", "unique", "fks", "checks"):
        if a[what] != b[what]:
            diffs.append("table %s: %s: SQLite %r, PostgreSQL %r"
                         % (t, what, sorted(a[what]) if isinstance(
                             a[what], set) else a[what],
                            sorted(b[what]) if isinstance(b[what], set)
                            else b[what]))
    return diffs


# ---- applying the migrations ------------------------------------------------

def apply_sqlite(path):
    c = sqlite3.connect(str(path), isolation_level=None)
    try:
        for n, name in enumerate(migrations(SQLITE_DIR), 1):
            sql = (SQLITE_DIR / name).read_text()
            c.executescript("BEGIN;\n%s\nPRAGMA user_version = %d;\nCOMMIT;"
                            % (sql, n))
    finally:
        c.close()


def apply_pg(cluster, url):
    for name in migrations(PG_DIR):
        cluster.psql(url, file=PG_DIR / name)


def apply_pgmigrate(url, node="test"):
    """pg_migrate() with the embedded migrations; its "version N applied M"."""
    r = subprocess.run([str(PGMIGRATE), url, node], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, "pgmigrate failed (exit %d): %s" % (
        r.returncode, r.stderr.strip())
    return r.stdout.strip()


@pytest.fixture(scope="module")
def migrated(pgcluster):  # noqa: F811
    """A database built by pg_migrate(), as the daemon will build it."""
    if not PGMIGRATE.exists():
        pytest.skip("%s not built (configure found no libpq)" % PGMIGRATE)
    url = pgcluster.create_db("schema_migrate")
    n = len(migrations(PG_DIR))
    assert apply_pgmigrate(url) == "version %d applied %d" % (
        int(migrations(PG_DIR)[-1][:3]), n)
    return url


@pytest.fixture(scope="module")
def catalogs(pgcluster, tmp_path_factory):  # noqa: F811
    db = tmp_path_factory.mktemp("schema") / "lite.db"
    apply_sqlite(db)
    url = pgcluster.create_db("schema_twin")
    apply_pg(pgcluster, url)
    return sqlite_catalog(db), pg_catalog(pgcluster, url)


def test_same_migrations():
    lite = migrations(SQLITE_DIR)
    pg = migrations(PG_DIR)
    assert lite, "no migrations in %s" % SQLITE_DIR
    assert lite == pg, ("queue/schema and queue/schema/pg must hold the same "
                        "NNN_name.sql files:\n  SQLite     %s\n  PostgreSQL "
                        "%s" % (lite, pg))


def test_schemas_match(catalogs):
    lite, pg = catalogs
    # The readers found the schema at all (a reader returning nothing on
    # both sides would compare equal).
    for cat, who in ((lite, "SQLite"), (pg, "PostgreSQL")):
        assert "messages" in cat["tables"], "%s: no messages table" % who
        assert len(cat["tables"]["messages"]["columns"]) >= 30, who
        assert "messages_due" in cat["indexes"], who
        assert cat["tables"]["subscriptions"]["fks"], who
        assert cat["tables"]["messages"]["checks"], who
        assert "audit_no_update" in cat["triggers"], who
    diffs = compare(lite, pg)
    assert not diffs, ("the SQLite and PostgreSQL schemas differ "
                       "(queue/schema/*.sql vs queue/schema/pg/*.sql):\n  "
                       + "\n  ".join(diffs))


def test_pg_full_text_search(pgcluster):  # noqa: F811
    """
    The exception above holds: conversation messages are found by a word
    without its accents and by a prefix, through the GIN index; a message
    outside any conversation is not indexed.
    """
    url = pgcluster.create_db("schema_fts")
    apply_pg(pgcluster, url)
    pgcluster.psql(url, """
        INSERT INTO messages (direction, channel, to_addr, body, status,
            next_attempt_at, created_at, updated_at, conversation_id)
        VALUES ('in', 'sms', '+15550100000', 'Sí, ¡Vamos al Café!',
                'received', 0, 0, 0, 1),
               ('in', 'sms', '+15550100000', 'cafe outside', 'received',
                0, 0, 0, NULL);
    """)
    found = pgcluster.psql(url, """
        SET enable_seqscan = off;
        SELECT string_agg(body, '|' ORDER BY id) FROM messages
        WHERE to_tsvector('od_search', body)
            @@ to_tsquery('od_search', 'cafe:* & si:*')
          AND conversation_id IS NOT NULL;
    """, single=False).strip()
    assert found == "Sí, ¡Vamos al Café!"
    plan = pgcluster.psql(url, """
        SET enable_seqscan = off;
        EXPLAIN SELECT id FROM messages
        WHERE to_tsvector('od_search', body) @@ to_tsquery('od_search', 'x')
          AND conversation_id IS NOT NULL;
    """, single=False)
    assert "conversation_fts" in plan, plan


def test_pg_append_only(pgcluster):  # noqa: F811
    """consent_events and audit refuse UPDATE and DELETE, as in SQLite."""
    url = pgcluster.create_db("schema_append")
    apply_pg(pgcluster, url)
    pgcluster.psql(url, """
        INSERT INTO members (phone, created_at, updated_at)
            VALUES ('+15550100001', 0, 0);
        INSERT INTO consent_events (member_id, channel, action, source,
            created_at) VALUES (1, 'sms', 'opt_in', 'api', 0);
        INSERT INTO audit (action, created_at) VALUES ('POST /x', 0);
    """)
    for sql in ("UPDATE consent_events SET source = 'x'",
                "DELETE FROM consent_events",
                "UPDATE audit SET action = 'x'", "DELETE FROM audit"):
        with pytest.raises(AssertionError, match="is append-only"):
            pgcluster.psql(url, sql)


def test_compare_catches_drift(pgcluster, catalogs):  # noqa: F811
    """
    The comparison is not blind: a database with one extra column, a
    changed default, a missing index, an index on other columns, a dropped
    NOT NULL, a changed CHECK, a messages.status CHECK that lost one state
    (SQLite spells that set as an OR chain, PostgreSQL as an IN list) and a
    foreign key without its ON DELETE each yield a difference that names
    it.
    """
    lite, _ = catalogs
    url = pgcluster.create_db("schema_drift")
    apply_pg(pgcluster, url)
    pgcluster.psql(url, """
        ALTER TABLE members ADD COLUMN nickname TEXT;
        ALTER TABLE messages ALTER COLUMN priority SET DEFAULT 4;
        DROP INDEX messages_next_due;
        DROP INDEX messages_member;
        CREATE INDEX messages_member ON messages(member_id);
        ALTER TABLE lists ALTER COLUMN name DROP NOT NULL;
        ALTER TABLE staff DROP CONSTRAINT staff_role_check;
        ALTER TABLE staff ADD CHECK (role IN ('admin'));
        ALTER TABLE messages DROP CONSTRAINT messages_status_check;
        ALTER TABLE messages ADD CHECK (status IN ('queued', 'sending',
            'sent', 'delivered', 'undelivered', 'failed', 'expired',
            'cancelled', 'suppressed'));
        ALTER TABLE sms_optout DROP CONSTRAINT sms_optout_member_id_fkey;
        ALTER TABLE sms_optout ADD FOREIGN KEY (member_id)
            REFERENCES members(id);
        DROP TRIGGER audit_no_delete ON audit;
    """)
    diffs = "\n".join(compare(lite, pg_catalog(pgcluster, url)))
    for needle in ("table members: columns differ",
                   "column messages.priority: default '5' in SQLite, '4'",
                   "index messages_next_due: in SQLite only",
                   "index messages_member: SQLite",
                   "column lists.name: NOT NULL in SQLite only",
                   "table staff: checks",
                   "table messages: checks",
                   "table sms_optout: fks",
                   "trigger audit_no_delete: in SQLite only"):
        assert needle in diffs, "%r not reported in:\n%s" % (needle, diffs)


def test_norm_expr_value_sets():
    """
    An IN list and an OR chain of the same set of states normalize alike,
    in any order and with PostgreSQL's casts; one state more or less, a
    second column, a different case or an AND does not.
    """
    sqlite_in = "status IN ('queued', 'sending',\n\t    'sent')"
    sqlite_or = ("status = 'sent' OR (status = 'queued')\n"
                 " OR status = 'sending'")
    pg = ("(status = ANY (ARRAY['sending'::text, 'queued'::text, "
          "'sent'::text]))")
    assert norm_expr(sqlite_in) == norm_expr(sqlite_or) == norm_expr(pg)
    for other in ("status = 'queued' OR status = 'sending'",
                  "status IN ('queued', 'sending', 'sent', 'failed')",
                  "status = 'queued' OR status = 'sending' OR state = 'sent'",
                  "status = 'queued' OR status = 'sending' OR status = 'Sent'",
                  "status = 'queued' AND status = 'sending' OR "
                  "status = 'sent'"):
        assert norm_expr(other) != norm_expr(sqlite_or), other


def test_pg_migrate_builds_the_same_schema(pgcluster, catalogs,  # noqa: F811
                                           migrated):
    """
    What pg_migrate() builds from the embedded migrations is what psql -f
    builds from the files, plus schema_version; so it matches SQLite too.
    """
    lite, by_psql = catalogs
    by_code = pg_catalog(pgcluster, migrated)
    assert "schema_version" in by_code["tables"]
    assert "schema_version" not in by_psql["tables"]
    rest = dict(by_code, tables={t: v for t, v in by_code["tables"].items()
                                 if t != "schema_version"})
    assert rest == by_psql
    diffs = compare(lite, by_code)
    assert not diffs, ("the schema pg_migrate() built differs from "
                       "SQLite's:\n  " + "\n  ".join(diffs))


def test_pg_migrate_versions(pgcluster, migrated):  # noqa: F811
    """
    schema_version holds one row per migration file, in order, with the
    node that applied it; a second run applies nothing.
    """
    rows = pgcluster.psql(migrated, "SELECT version || ' ' || name || ' ' || "
                          "applied_by FROM schema_version ORDER BY version",
                          single=False).split()
    want = []
    for name in migrations(PG_DIR):
        want += [str(int(name[:3])), name, "test"]
    assert rows == want
    n = int(migrations(PG_DIR)[-1][:3])
    assert apply_pgmigrate(migrated, "again") == "version %d applied 0" % n
