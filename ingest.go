package vibekit

// Reject is an input line kept out of the telemetry table, with why.
type Reject struct {
	Source string
	Line   int64 // 1-based line number within the source
	Offset int64 // byte offset of the line's start
	Length int64 // the line's full length in bytes
	Reason string
	Raw    string // the line, or its start when it was over the limit
	Time   int64  // Unix ms when it was read
}

// LinePos is where in its source a line was read: a refused row's reject
// points there.
type LinePos struct {
	Line   int64 // 1-based line number within the source
	Offset int64 // byte offset of the line's start
	Length int64 // the line's full length in bytes
}

// Checkpoint is a source's read position after the lines of a batch: the
// store commits it in the same transaction as their rows (DESIGN invariant 1).
//
// Source is the name rows record and `dump --source` selects (a path,
// "stdin"); Key tells apart the inputs that share a name, such as a log file
// and the file that replaced it at the same path after a rotation.
type Checkpoint struct {
	Source      string
	Key         string // the checkpoint's identity; "" means Source
	Kind        string // stdin, file, fifo
	Dev, Ino    uint64
	Fingerprint []byte // the file's first bytes, which tell a reused inode apart
	Offset      int64  // byte position after the last line of the batch
	Line        int64  // lines read so far
	Size        int64  // the file's size when read, for lag
	// Birth is the file's birth time (statx), Unix ns; 0 if the file
	// system does not keep one. It tells a new file at a reused inode
	// from the old one even when their first bytes are the same.
	Birth int64
	// Gone marks a file that can no longer be found, whose loss was reported.
	Gone bool
	// Release gives up this process's claim of the file (see vk_claims) in
	// the transaction that commits its last position.
	Release bool
}

// SourceKey is the checkpoint's identity: Key, or Source when Key is empty.
func (c *Checkpoint) SourceKey() string {
	if c.Key != "" {
		return c.Key
	}
	return c.Source
}

// SourceState is a checkpoint as the store holds it.
type SourceState struct {
	Checkpoint
	Updated int64 // Unix ms of the commit that wrote it
}

// Batch is what the store commits in one transaction. Records[i] was read
// from the source whose key (Checkpoint.SourceKey) is RecordSources[i], empty
// for records that came from no input, at RecordLines[i] (zero if unknown).
type Batch struct {
	Records       []Record
	RecordSources []string
	RecordLines   []LinePos
	Rejects       []Reject
	Checkpoints   []Checkpoint
	Warnings      []Warning // committed with the checkpoints they concern
	Lines         int64     // input lines the batch accounts for
	Bytes         int64     // their bytes
	Skipped       int64     // blank lines, and lines a mapping dropped
}

// Len is the number of rows the batch writes.
func (b *Batch) Len() int { return len(b.Records) + len(b.Rejects) }

// Reset empties b, keeping its storage.
func (b *Batch) Reset() {
	clear(b.Records) // drop references to strings and metadata
	b.Records = b.Records[:0]
	b.RecordSources = b.RecordSources[:0]
	b.RecordLines = b.RecordLines[:0]
	b.Rejects = b.Rejects[:0]
	b.Checkpoints = b.Checkpoints[:0]
	b.Warnings = b.Warnings[:0]
	b.Lines, b.Bytes, b.Skipped = 0, 0, 0
}
