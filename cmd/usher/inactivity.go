package main

import (
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
)

// newInactivity returns what counts inactive users for notification emails:
// the usage service, which answers from the same query as the Usage Report.
func newInactivity(db *store.DB, now func() time.Time) notify.Inactivity {
	return usage.New(db.Usage(), usage.Config{Now: now})
}
