package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// testNowEnv names a file whose content is the current time (RFC 3339),
// re-read on every look at the clock. It exists so that tests can run real
// `usher serve` processes through days of schedules in seconds; it is not
// for production and serve warns loudly when it is set.
const testNowEnv = "USHER_TEST_NOW_FILE"

// clockFromEnv returns the clock commands use: time.Now, or the time in the
// file named by USHER_TEST_NOW_FILE. The file must be readable at start; if
// it later cannot be read or parsed (a test rewriting it), the clock keeps
// the last time it read rather than jump back to the real time.
func clockFromEnv(log *slog.Logger) (func() time.Time, error) {
	path := os.Getenv(testNowEnv)
	if path == "" {
		return time.Now, nil
	}
	c := &fileClock{path: path, log: log}
	t, err := c.read()
	if err != nil {
		return nil, usageErrorf("%s: %v", testNowEnv, err)
	}
	c.last = t
	if log != nil {
		log.Warn("the clock is read from a file: for tests only", "env", testNowEnv, "file", path, "now", t)
	}
	return c.Now, nil
}

type fileClock struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex
	last time.Time
}

func (c *fileClock) read() (time.Time, error) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time: %w", c.path, err)
	}
	return t, nil
}

// Now returns the time in the file.
func (c *fileClock) Now() time.Time {
	t, err := c.read()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.log != nil {
			c.log.Error("cannot read the test clock; keeping its last time", "env", testNowEnv, "error", err)
		}
		return c.last
	}
	c.last = t
	return t
}
