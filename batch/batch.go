// Package batch decides when buffered rows are committed: when streamBatchSize
// rows are waiting, when the oldest has waited streamFlushIntervalMs, or at
// once for a session's start, end or error row. It does no I/O of its own.
package batch

import (
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Batcher buffers rows in input order. It is not safe for concurrent use.
type Batcher struct {
	size     int
	interval time.Duration

	cur      *vibekit.Batch
	spare    *vibekit.Batch
	oldest   time.Time // when the oldest pending item was added; zero if none
	urgent   bool      // a lifecycle row is waiting
	sessions map[string]struct{}
	cps      map[string]int // source key -> index in cur.Checkpoints
}

// New returns a Batcher that flushes at size rows (at least 1) or after
// interval (at most; a non-positive interval flushes at once).
func New(size int, interval time.Duration) *Batcher {
	return &Batcher{
		size:     max(size, 1),
		interval: interval,
		cur:      &vibekit.Batch{},
		sessions: map[string]struct{}{},
		cps:      map[string]int{},
	}
}

func (b *Batcher) touch(now time.Time) {
	if b.oldest.IsZero() {
		b.oldest = now
	}
}

// AddRecord buffers a record read from the source with key source ("" for none). A start, end or
// error record makes the batch due at once, after the rows buffered before it.
func (b *Batcher) AddRecord(r vibekit.Record, source string, now time.Time) {
	b.AddRecordAt(r, source, vibekit.LinePos{}, now)
}

// AddRecordAt is AddRecord for a record mapped from the line at pos.
func (b *Batcher) AddRecordAt(r vibekit.Record, source string, pos vibekit.LinePos, now time.Time) {
	b.touch(now)
	b.cur.Records = append(b.cur.Records, r)
	b.cur.RecordSources = append(b.cur.RecordSources, source)
	b.cur.RecordLines = append(b.cur.RecordLines, pos)
	if r.EventType.Lifecycle() {
		b.urgent = true
	} else {
		b.sessions[r.SessionID] = struct{}{}
	}
}

// AddReject buffers a rejected line; it waits like a stream row.
func (b *Batcher) AddReject(r vibekit.Reject, now time.Time) {
	b.touch(now)
	b.cur.Rejects = append(b.cur.Rejects, r)
}

// AddWarning buffers a report about reading (a gap, a re-read); it is
// committed with the checkpoint it concerns, and at once.
func (b *Batcher) AddWarning(w vibekit.Warning, now time.Time) {
	b.touch(now)
	b.cur.Warnings = append(b.cur.Warnings, w)
	b.urgent = true
}

// CountLine accounts for one input line of n bytes; skipped lines (blank, or
// dropped by a mapping) are counted here only.
func (b *Batcher) CountLine(n int64, skipped bool, now time.Time) {
	b.touch(now)
	b.cur.Lines++
	b.cur.Bytes += n
	if skipped {
		b.cur.Skipped++
	}
}

// Checkpoint records a source's position after its latest buffered line.
// Sources are told apart by their key, so a rotated file and its successor
// each keep their own.
func (b *Batcher) Checkpoint(c vibekit.Checkpoint, now time.Time) {
	b.touch(now)
	key := c.SourceKey()
	if i, ok := b.cps[key]; ok {
		b.cur.Checkpoints[i] = c
		return
	}
	b.cps[key] = len(b.cur.Checkpoints)
	b.cur.Checkpoints = append(b.cur.Checkpoints, c)
}

// Empty reports whether nothing is waiting.
func (b *Batcher) Empty() bool { return b.oldest.IsZero() }

// Rows is the number of rows waiting.
func (b *Batcher) Rows() int { return b.cur.Len() }

// ActiveBuffers is the number of sessions with stream rows waiting.
func (b *Batcher) ActiveBuffers() int { return len(b.sessions) }

// Ready reports whether the batch is due: a lifecycle row is waiting, size
// rows are, or the oldest item has waited the interval.
func (b *Batcher) Ready(now time.Time) bool {
	if b.Empty() {
		return false
	}
	return b.urgent || b.cur.Len() >= b.size || !now.Before(b.oldest.Add(b.interval))
}

// Deadline is when the waiting items become due by age; ok is false if
// nothing is waiting.
func (b *Batcher) Deadline() (t time.Time, ok bool) {
	if b.Empty() {
		return time.Time{}, false
	}
	return b.oldest.Add(b.interval), true
}

// Take returns the waiting batch and starts an empty one. Give the batch back
// with Recycle once it is committed, to reuse its storage.
func (b *Batcher) Take() *vibekit.Batch {
	out := b.cur
	if b.spare != nil {
		b.cur, b.spare = b.spare, nil
	} else {
		b.cur = &vibekit.Batch{}
	}
	b.oldest, b.urgent = time.Time{}, false
	clear(b.sessions)
	clear(b.cps)
	return out
}

// Recycle hands back a committed batch for reuse.
func (b *Batcher) Recycle(done *vibekit.Batch) {
	done.Reset()
	b.spare = done
}
