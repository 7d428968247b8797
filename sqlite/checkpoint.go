package sqlite

import (
	"database/sql"
	"sync"
)

// checkpointEvery is how many bytes of rows are committed between background
// checkpoints.
const checkpointEvery = 4 << 20

// checkpointer copies the WAL into the database on its own connection, so
// that the copy and its fsync do not stall the writer: a passive checkpoint
// runs beside write transactions. The writer only nudges it.
type checkpointer struct {
	mu      sync.Mutex // held while a checkpoint runs; a seal's switch holds it to run its own
	db      *sql.DB
	kick    chan struct{}
	done    sync.WaitGroup
	pending int64 // bytes committed since the last nudge; writer's side only
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kick: make(chan struct{}, 1)}
	db.SetMaxOpenConns(1)
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		for range c.kick {
			// Errors are not fatal: the writer's automatic checkpoint is
			// the backstop, and the next nudge tries again.
			c.mu.Lock()
			c.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			c.mu.Unlock()
		}
	}()
	return c
}

// committed tells the checkpointer that n more bytes were committed.
func (c *checkpointer) committed(n int64) {
	c.pending += n
	if c.pending < checkpointEvery {
		return
	}
	c.pending = 0
	select {
	case c.kick <- struct{}{}:
	default: // one is already waiting
	}
}

func (c *checkpointer) close() {
	close(c.kick)
	c.done.Wait()
	c.db.Close()
}
