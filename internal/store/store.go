// Package store keeps Usher's data in SQLite or PostgreSQL. One
// implementation over database/sql serves both engines: queries are written
// once with ? placeholders and rebound to $n for PostgreSQL. Only the DDL
// (migrations/<engine>/) and bulk loading differ per engine.
//
// Every method that takes an account id confines itself to that account:
// objects of another account answer usher.ENOTFOUND, and lists never
// include them.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usherhq/usher/internal/access"
)

// Engine names returned by (*DB).Engine.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is an open database: two connection pools on SQLite (one writer, several
// readers), one on PostgreSQL.
type DB struct {
	engine string
	writer *sql.DB
	reader *sql.DB // the same pool as writer on PostgreSQL

	// readOpts and writeOpts are the transaction options per engine.
	readOpts, writeOpts *sql.TxOptions

	// Compiled statements of each SQLite pool; nil on PostgreSQL.
	writerStmts, readerStmts *stmtCache

	stats Stats
	dsn   string // what Open was given

	catalog productCatalog // products read by views of a user's access
}

// Stats counts committed changes that metrics report. They are counted
// here, where every change passes, so that the domain packages need to know
// nothing of metrics; a change rolled back is not counted.
type Stats struct {
	SeatsAssigned   atomic.Int64 // seats taken by anyone, any way
	SeatsUnassigned atomic.Int64 // seats given back, by unassigning or deleting the user
}

// Stats returns the database's change counters.
func (db *DB) Stats() *Stats { return &db.stats }

// PoolStats returns the connection pools' statistics by name: "writer" and
// "reader" on SQLite, "main" on PostgreSQL.
func (db *DB) PoolStats() map[string]sql.DBStats {
	if db.reader == db.writer {
		return map[string]sql.DBStats{"main": db.writer.Stats()}
	}
	return map[string]sql.DBStats{"writer": db.writer.Stats(), "reader": db.reader.Stats()}
}

// sqliteBusyTimeout is how long an SQLite connection waits for a lock held
// by another process (e.g. `usher migrate` while `usher serve` runs). Our own
// writes never wait on each other: they share one connection.
const sqliteBusyTimeout = 10 * time.Second

// postgresMaxConns bounds the PostgreSQL pool so that several replicas stay
// well under the server's max_connections (100 by default).
const postgresMaxConns = 20

// Open opens the database named by dsn: a postgres:// or postgresql:// URL
// for PostgreSQL, anything else an SQLite file path, optionally prefixed with
// sqlite: or file:. Open checks that the database answers but does not
// migrate it; call Migrate.
func Open(ctx context.Context, dsn string) (*DB, error) {
	path, ok := SQLitePath(dsn)
	var db *DB
	var err error
	if !ok {
		db, err = openPostgres(ctx, dsn)
	} else {
		db, err = openSQLite(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	db.dsn = dsn
	return db, nil
}

// OpenAgain opens a second DB, with pools of its own, on the same
// database, as another process of Usher would: the benchmark runs two
// replicas with it.
func (db *DB) OpenAgain(ctx context.Context) (*DB, error) {
	return Open(ctx, db.dsn)
}

// DSN is the data source name the DB was opened with: a scratch schema's
// URL names its search_path, so another process can open the same schema.
// It may hold a password.
func (db *DB) DSN() string { return db.dsn }

// SQLitePath returns the file a dsn names, and false for a PostgreSQL URL.
func SQLitePath(dsn string) (string, bool) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "", false
	}
	for _, prefix := range []string{"sqlite://", "sqlite:", "file:"} {
		if strings.HasPrefix(dsn, prefix) {
			return strings.TrimPrefix(dsn, prefix), true
		}
	}
	return dsn, true
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	pool.SetMaxOpenConns(postgresMaxConns)
	// As many idle as open: under many clients a connection given back
	// beyond a smaller idle bound was closed and another opened at once,
	// each a new server process that plans its statements afresh. Idle ones
	// still close after ConnMaxIdleTime.
	pool.SetMaxIdleConns(postgresMaxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{
		engine: Postgres,
		writer: pool,
		reader: pool,
		// A read sees one snapshot across its statements; read-only
		// transactions never fail with serialization errors.
		readOpts: &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		// Writes stay READ COMMITTED: a conditional UPDATE that waited for a
		// row lock re-checks its WHERE against the committed row, which is
		// what ReserveSeat relies on.
		writeOpts: nil,
	}, nil
}

// sqliteWriterCacheKiB is the page cache of the SQLite writer connection,
// in KiB (SQLite's default is 2,000).
const sqliteWriterCacheKiB = 32 << 10

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("empty SQLite file path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("SQLite file path %q: must not contain ? or #; Usher sets the connection options itself", path)
	}
	params := url.Values{}
	params.Set("_busy_timeout", fmt.Sprint(sqliteBusyTimeout.Milliseconds()))
	params.Set("_foreign_keys", "on")
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "NORMAL")

	// The writer takes the write lock at BEGIN (IMMEDIATE), so a
	// transaction never fails half way when upgrading a read lock, and
	// MaxOpenConns(1) queues our own writers in the pool, not in SQLite.
	wp := cloneValues(params)
	wp.Set("_txlock", "immediate")
	// The writer's page cache holds the pages the ingest revisits for
	// every batch (users, seats, days, rollups, the upper levels of the
	// events' key): with SQLite's default of 2 MiB each batch read them
	// again from the file, a system call per page. It grows only as pages
	// are used; see decision 0036.
	wp.Set("_pragma", fmt.Sprintf("cache_size(%d)", -sqliteWriterCacheKiB))
	writer, err := sql.Open("sqlite", path+"?"+wp.Encode())
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The writer connects first: it creates the file and switches it to WAL.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, err
	}

	// Before any reader connects, so every connection loads the same
	// statistics: none of them with stat4 samples (see keepStat1Only).
	if err := keepStat1Only(ctx, writer, ""); err != nil {
		writer.Close()
		return nil, err
	}

	rp := cloneValues(params)
	rp.Set("_query_only", "on")
	reader, err := sql.Open("sqlite", path+"?"+rp.Encode())
	if err != nil {
		writer.Close()
		return nil, err
	}
	n := max(4, runtime.NumCPU())
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, err
	}
	return &DB{engine: SQLite, writer: writer, reader: reader,
		writerStmts: newStmtCache(writer), readerStmts: newStmtCache(reader)}, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Engine returns "sqlite" or "postgres".
func (db *DB) Engine() string { return db.engine }

// SQL returns the writer pool, for health checks, benchmarks and baselines.
func (db *DB) SQL() *sql.DB { return db.writer }

// ReadSQL returns the pool reads run on (DB.Read, DB.Peek): the reader pool
// on SQLite, the one pool on PostgreSQL. Baselines of reads under many
// clients run on it, so they have the same connections as the reads.
func (db *DB) ReadSQL() *sql.DB { return db.reader }

// Close closes the pools. On SQLite it first lets the planner refresh its
// statistics (PRAGMA optimize), as SQLite recommends before closing.
func (db *DB) Close() error {
	if db.engine == SQLite {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = keepStat1Only(ctx, db.writer, "PRAGMA optimize") // best effort
		cancel()
	}
	if db.writerStmts != nil {
		db.writerStmts.close()
		db.readerStmts.close()
	}
	err := db.writer.Close()
	if db.reader != db.writer {
		err = errors.Join(err, db.reader.Close())
	}
	return err
}

// Analyze refreshes the planner's statistics, as after a bulk load. On
// SQLite it keeps only sqlite_stat1 (see keepStat1Only) and closes the idle
// reader connections, so the next reads load the new statistics; a reader
// busy meanwhile keeps the ones it had.
func (db *DB) Analyze(ctx context.Context) error {
	if db.engine != SQLite {
		if _, err := db.writer.ExecContext(ctx, "ANALYZE"); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
		return nil
	}
	if err := keepStat1Only(ctx, db.writer, "ANALYZE"); err != nil {
		return err
	}
	n := max(4, runtime.NumCPU())
	db.reader.SetMaxIdleConns(0)
	db.reader.SetMaxIdleConns(n)
	return nil
}

// keepStat1Only runs analyze (ANALYZE, PRAGMA optimize, or nothing) on the
// SQLite writer and then deletes the sqlite_stat4 samples it wrote, in one
// transaction, so no connection ever loads them. With stat4 samples (the
// driver is built with SQLITE_ENABLE_STAT4), SQLite re-prepares a statement
// whenever a parameter compared with an indexed column, such as the account
// id, changes value, which undoes the statement cache: a third of the
// notification scheduler's time went to it. sqlite_stat1 gives the same
// plans for Usher's queries (decision 0031).
func keepStat1Only(ctx context.Context, writer *sql.DB, analyze string) error {
	if analyze == "" {
		// Only write when there is something to delete: Open runs this.
		var samples bool
		err := writer.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat4')`).Scan(&samples)
		if err == nil && samples {
			err = writer.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_stat4)`).Scan(&samples)
		}
		if err != nil {
			return fmt.Errorf("planner statistics: %w", err)
		}
		if !samples {
			return nil
		}
	}
	tx, err := writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("planner statistics: %w", err)
	}
	defer tx.Rollback()
	if analyze != "" {
		if _, err := tx.ExecContext(ctx, analyze); err != nil {
			return fmt.Errorf("planner statistics: %s: %w", analyze, err)
		}
	}
	var stat4 bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat4')`).Scan(&stat4); err != nil {
		return fmt.Errorf("planner statistics: %w", err)
	}
	if stat4 {
		// ANALYZE sqlite_schema reloads the statistics on this connection.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sqlite_stat4; ANALYZE sqlite_schema`); err != nil {
			return fmt.Errorf("planner statistics: drop stat4: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("planner statistics: %w", err)
	}
	return nil
}

// Read runs fn in a read-only transaction. Reads may run in parallel with
// each other and with a write. A read is tried once: fn may already have
// streamed rows to a client, and read-only transactions take no row locks
// that could deadlock.
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.reader, db.readerStmts, db.readOpts, 1, fn)
}

// Peek runs fn outside a transaction, on the reader pool: each statement
// sees what was committed when it started. A single statement is
// consistent on its own, so a read of one statement, or of statements that
// check one another (the account's data version read first and last), needs
// no BEGIN and COMMIT, which on PostgreSQL are two more round trips. fn
// must not write: Tx.exec refuses.
func (db *DB) Peek(ctx context.Context, fn func(*Tx) error) error {
	return fn(&Tx{q: db.reader, engine: db.engine, stmts: db.readerStmts, catalog: &db.catalog})
}

// Write runs fn in a transaction and commits it if fn returns nil. On SQLite
// writes are serialised on one connection, so fn must not call Write itself.
//
// When the database aborts the transaction to break a deadlock or a
// serialization conflict, or SQLite stays busy, Write runs fn again in a new
// transaction, up to WriteAttempts times in all, after a jittered pause. So
// fn must change nothing outside the transaction but variables it sets
// afresh on every run; results to hand back are set, not appended to.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.writer, db.writerStmts, db.writeOpts, WriteAttempts, fn)
}

// WriteAttempts bounds how often Write tries a transaction that the
// database aborted to break a deadlock or serialization conflict. With the
// pauses of retryPause the last try starts some 0.6 s after the first.
const WriteAttempts = 8

// retryPause is the pause before try n+1 (n ≥ 1): exponential from 2 ms,
// capped at 200 ms, with full jitter so that the transactions that
// deadlocked together do not meet again at the same instant.
func retryPause(n int) time.Duration {
	d := min(2*time.Millisecond<<(n-1), 200*time.Millisecond)
	return d/2 + rand.N(d/2+1)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, stmts *stmtCache, opts *sql.TxOptions, attempts int, fn func(*Tx) error) error {
	for n := 1; ; n++ {
		err := db.runOnce(ctx, pool, stmts, opts, fn)
		if err == nil || n >= attempts || !isRetryable(err) {
			return err
		}
		t := time.NewTimer(retryPause(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

func (db *DB) runOnce(ctx context.Context, pool *sql.DB, stmts *stmtCache, opts *sql.TxOptions, fn func(*Tx) error) error {
	// On PostgreSQL the transaction keeps its connection at hand, so that
	// bulk writes can use the COPY protocol inside it (Tx.copyFrom).
	var conn *sql.Conn
	if db.engine == Postgres {
		c, err := pool.Conn(ctx)
		if err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		defer c.Close()
		conn = c
	}
	var sqlTx *sql.Tx
	var err error
	if conn != nil {
		sqlTx, err = conn.BeginTx(ctx, opts)
	} else {
		sqlTx, err = pool.BeginTx(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer sqlTx.Rollback() //nolint:errcheck // a no-op after Commit
	tx := &Tx{tx: sqlTx, q: sqlTx, conn: conn, engine: db.engine, stmts: stmts, catalog: &db.catalog}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.bumpVersions(ctx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.stats.SeatsAssigned.Add(tx.seats.assigned)
	db.stats.SeatsUnassigned.Add(tx.seats.unassigned)
	return nil
}

// Tx is one transaction. It implements the Tx interfaces of the domain
// packages (access.Tx, …); each domain reaches it through its own adapter,
// such as Access.
type Tx struct {
	tx     *sql.Tx   // nil outside a transaction (DB.Peek)
	q      querier   // tx, or the reader pool outside a transaction
	conn   *sql.Conn // the transaction's connection on PostgreSQL; nil on SQLite
	engine string
	stmts  *stmtCache // nil: run queries unprepared

	changed []int64                              // accounts whose data version moves on at commit
	seats   struct{ assigned, unassigned int64 } // added to DB.stats at commit

	catalog *productCatalog // the DB's; nil: products are read every time
}

// querier runs statements: a transaction or a pool.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errPeekWrite is what a write outside a transaction gets: nothing would
// move the data version on, nor make the write all-or-nothing.
var errPeekWrite = errors.New("store: a write outside a transaction")

// markChanged notes that the transaction changes what the account's reports
// show, so that its data version moves on when it commits.
func (tx *Tx) markChanged(accountID int64) {
	if !slices.Contains(tx.changed, accountID) {
		tx.changed = append(tx.changed, accountID)
	}
}

// bumpVersions moves the data version of every changed account on, as the
// transaction's last statements. Taking the accounts' row locks last, in id
// order, keeps them out of lock cycles with the rows changed before, and
// makes versions follow commit order: a snapshot that sees version v sees
// every change up to v and none after.
func (tx *Tx) bumpVersions(ctx context.Context) error {
	slices.Sort(tx.changed)
	for _, id := range tx.changed {
		if _, err := tx.exec(ctx, "UPDATE accounts SET data_version = data_version + 1 WHERE id = ?", id); err != nil {
			return fmt.Errorf("data version of account %d: %w", id, err)
		}
	}
	return nil
}

// domainStore hands a domain package its transactions as the Tx interface
// it declares (access.Tx, usage.Tx, …); *Tx implements every one of them,
// as the `var _ … = (*Tx)(nil)` lines check at compile time.
type domainStore[T any] struct{ db *DB }

func (s domainStore[T]) Read(ctx context.Context, fn func(T) error) error {
	return s.db.Read(ctx, func(tx *Tx) error { return fn(any(tx).(T)) })
}

func (s domainStore[T]) Peek(ctx context.Context, fn func(T) error) error {
	return s.db.Peek(ctx, func(tx *Tx) error { return fn(any(tx).(T)) })
}

func (s domainStore[T]) Write(ctx context.Context, fn func(T) error) error {
	return s.db.Write(ctx, func(tx *Tx) error { return fn(any(tx).(T)) })
}

// Access returns the store of the access domain.
func (db *DB) Access() access.Store { return domainStore[access.Tx]{db} }

var _ access.Tx = (*Tx)(nil)

// ---- query helpers ----

func (tx *Tx) bind(query string) string {
	if tx.engine == Postgres {
		return rebind(query)
	}
	return query
}

func (tx *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if tx.tx == nil {
		return nil, errPeekWrite
	}
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.q.ExecContext(ctx, tx.bind(query), args...)
}

func (tx *Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.q.QueryContext(ctx, tx.bind(query), args...)
}

func (tx *Tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.q.QueryRowContext(ctx, tx.bind(query), args...)
}

// stmt returns the compiled statement of query bound to this transaction
// (or the pool's, outside one), or nil to run it unprepared. database/sql
// closes a transaction's statement with the transaction.
func (tx *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if tx.stmts == nil {
		return nil
	}
	st := tx.stmts.stmt(tx.bind(query))
	if st == nil || tx.tx == nil {
		return st
	}
	return tx.tx.StmtContext(ctx, st)
}

// copyFrom loads rows into table with PostgreSQL's COPY protocol, inside the
// transaction: the fastest way to hand the server many rows, with no
// parameter limit and no statement to parse per row.
func (tx *Tx) copyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	if tx.conn == nil {
		return 0, errors.New("copy: not a PostgreSQL transaction")
	}
	var n int64
	err := tx.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("copy: driver connection is %T, not pgx", dc)
		}
		var err error
		n, err = c.Conn().CopyFrom(ctx, table, columns, rows)
		return err
	})
	return n, err
}

// affected returns how many rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rebind turns ? placeholders into PostgreSQL's $1, $2, …, leaving
// quoted strings and identifiers alone.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte // the quote we are inside, or 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0 // a doubled quote closes and reopens: same result
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// placeholders returns "?, ?, …" with n placeholders, for IN lists.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// int64Args converts ids to query arguments.
func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// ---- values ----

// millis is how times are stored: BIGINT unix milliseconds, UTC.
func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullID stores 0 as NULL, for optional references.
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// ---- errors ----

// isUniqueViolation reports whether err is a unique or primary key violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isRetryable reports whether err means the transaction lost a race it can
// win when run again: PostgreSQL aborted it to break a deadlock (40P01) or
// a serialization conflict (40001), or SQLite stayed busy or locked past
// its busy timeout.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		primary := sqErr.Code() & 0xff // extended codes keep the primary one in the low byte
		return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
	}
	return false
}

// isForeignKeyViolation reports whether err says a referenced row is missing.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
