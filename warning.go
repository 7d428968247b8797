package vibekit

import "errors"

// The kinds of Warning.
const (
	// WarnGap: bytes of an input were not read and never will be: a file
	// truncated or deleted before they were read, a NUL-filled hole.
	WarnGap = "gap"
	// WarnReread: bytes of an input are read again, or may be, although
	// rows from them may be stored already.
	WarnReread = "reread"
	// WarnClaim: a followed file was not read because another process
	// holds its claim in the store.
	WarnClaim = "claim"
)

// ErrClaimed means another live process holds a followed file's claim in
// the store: reading it too would store its lines twice.
var ErrClaimed = errors.New("claimed by another process")

// Warning is a place where reading could not keep "exactly once" and says
// so instead: the store commits it (table vk_warnings) in the same
// transaction as the checkpoint it concerns, so a crash loses neither or both.
type Warning struct {
	Kind   string // WarnGap, WarnReread, WarnClaim
	Source string // the input's name (a file's path)
	Key    string // the checkpoint it concerns; "" for none
	Offset int64  // where in the input
	Bytes  int64  // how many bytes were skipped or read again; -1 if unknown
	Detail string // what happened, in a sentence
	Time   int64  // Unix ms
	// Forgotten is the vk_forgotten row (a checkpoint deleted by hand) this
	// report settles; 0 for none.
	Forgotten int64
}

// ForgottenSource is a checkpoint that was deleted from the store while
// rows read under it may remain: a file read again from 0 under a new
// checkpoint is then reported as a re-read.
type ForgottenSource struct {
	ID int64
	Checkpoint
}
