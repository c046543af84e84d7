package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStatements bounds a pool's statement cache. Queries built with a
// varying number of placeholders (IN lists, multi-row VALUES) would otherwise
// fill it; past the bound, new texts simply run unprepared.
const maxCachedStatements = 512

// stmtCache keeps SQLite statements compiled: the modernc driver compiles
// every query text anew, which for the short queries of a request costs more
// than running them. A cached *sql.Stmt is compiled once per connection, and
// Tx.StmtContext reuses it in every transaction on that connection.
// PostgreSQL needs none: pgx caches prepared statements per connection itself.
//
// A statement is added in the background: preparing it on the pool needs a
// free connection, and the caller holds one in a transaction (the writer pool
// has only that one). Until it is ready the query runs unprepared.
type stmtCache struct {
	pool   *sql.DB
	ctx    context.Context // ends with close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	m       map[string]*sql.Stmt // nil value: being prepared, or failed to
	stopped bool
}

func newStmtCache(pool *sql.DB) *stmtCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &stmtCache{pool: pool, ctx: ctx, cancel: cancel, m: make(map[string]*sql.Stmt)}
}

// stmt returns the compiled statement for query, or nil to run it unprepared.
func (c *stmtCache) stmt(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok || c.stopped || len(c.m) >= maxCachedStatements {
		return st
	}
	c.m[query] = nil
	c.wg.Go(func() {
		st, err := c.pool.PrepareContext(c.ctx, query)
		if err != nil {
			return // stays nil: the query keeps running unprepared and reports its own error
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.stopped {
			st.Close()
			return
		}
		c.m[query] = st
	})
	return nil
}

// close stops preparing and closes every statement. Call it before closing
// the pool, so no preparation waits on a pool that will not answer.
func (c *stmtCache) close() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		if st != nil {
			st.Close()
		}
	}
	clear(c.m)
}
