package rotate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Limits bound what reading one archive may cost, whatever the file holds.
type Limits struct {
	// MaxBytes caps the unpacked size; zero means DefaultMaxBytes. A frame
	// that declares more is refused before anything is written.
	MaxBytes int64
	// MaxWindow caps the zstd window, which is what decoding holds in memory;
	// zero means DefaultMaxWindow.
	MaxWindow int64
}

// Defaults of Limits. Our archives are written with a window of at most
// 8 MiB (zstd level 3 uses 2 MiB), so 64 MiB leaves room for files
// recompressed by the zstd tool without letting one file take much memory.
const (
	DefaultMaxBytes  = 16 << 30
	DefaultMaxWindow = 64 << 20
)

func (l Limits) maxBytes() int64 {
	if l.MaxBytes > 0 {
		return l.MaxBytes
	}
	return DefaultMaxBytes
}

func (l Limits) maxWindow() int64 {
	if l.MaxWindow > 0 {
		return l.MaxWindow
	}
	return DefaultMaxWindow
}

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// frameSize is how much of the database one zstd frame holds. Independent
// frames of 1 MiB compress as fast as longer ones, can be compressed on
// several cores, and lose about 7% of ratio against 4 MiB frames (still
// above the zstd tool's level 3 on the whole file); decoders read
// concatenated frames as one stream. Small frames keep a seal's buffers,
// and the decoder's window when verifying, small: in a pipe that keeps
// under a memory limit, a seal does not make the collector run more.
const frameSize = 1 << 20

// encoders keeps the frame encoders between seals, by level: their tables
// are allocated once, not at every seal (a sync.Pool would drop them at
// each collection). A window of one frame keeps each encoder's history at
// about 2 MiB; zstd's level 3 would reserve 16 MiB for its 8 MiB window.
var encoders struct {
	sync.Mutex
	free map[zstd.EncoderLevel][]*zstd.Encoder
}

func getEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	encoders.Lock()
	if l := encoders.free[level]; len(l) > 0 {
		e := l[len(l)-1]
		encoders.free[level] = l[:len(l)-1]
		encoders.Unlock()
		return e, nil
	}
	encoders.Unlock()
	// Each frame's header states its size (EncodeAll does) and it ends in
	// the checksum of its content.
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true),
		zstd.WithWindowSize(frameSize))
}

func putEncoder(level zstd.EncoderLevel, e *zstd.Encoder) {
	encoders.Lock()
	defer encoders.Unlock()
	if encoders.free == nil {
		encoders.free = map[zstd.EncoderLevel][]*zstd.Encoder{}
	}
	encoders.free[level] = append(encoders.free[level], e)
}

// framing is what pack wrote, for verifying the archive: the size of the
// database compressed and, in order, each frame's compressed length and the
// checksum of its content that ends it (xxhash64, low 32 bits). The decoder
// checks each frame's content against that checksum, so an archive whose
// frames end in these checksums, in this order, and decode, holds the
// database pack read: verifying needs no second read or hash of it.
type framing struct {
	size   int64
	frames []frame
}

type frame struct {
	n   int64
	sum uint32
}

// frameWriter writes frames to w, one per Write, and notes their framing.
type frameWriter struct {
	w io.Writer
	f framing
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	if len(p) < 4 {
		return 0, errors.New("a frame shorter than its checksum")
	}
	fw.f.frames = append(fw.f.frames, frame{int64(len(p)), binary.LittleEndian.Uint32(p[len(p)-4:])})
	return fw.w.Write(p)
}

// pack compresses the database file src into a new file dst (0600), with m
// in a skippable frame ahead of it, and fsyncs dst. level is the zstd
// encoder's; workers compress frames in parallel. It returns the archive's
// size and its framing.
func pack(ctx context.Context, src, dst string, m Meta, level zstd.EncoderLevel, workers int) (int64, framing, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, framing{}, fmt.Errorf("compress: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, framing{}, fmt.Errorf("compress: %w", err)
	}
	m.Bytes = fi.Size()
	return packFrom(ctx, in, dst, m, level, workers)
}

// packFrom is pack reading the m.Bytes bytes of the database from r.
func packFrom(ctx context.Context, r io.Reader, dst string, m Meta, level zstd.EncoderLevel, workers int) (int64, framing, error) {
	n, f, err := packTo(ctx, r, dst, m, level, workers)
	if err != nil {
		err = fmt.Errorf("compress: %w", err)
	}
	return n, f, err
}

func packTo(ctx context.Context, r io.Reader, dst string, m Meta, level zstd.EncoderLevel, workers int) (int64, framing, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, framing{}, err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(dst)
		}
	}()
	if _, err := out.Write(appendMeta(nil, m)); err != nil {
		return 0, framing{}, err
	}
	fw := &frameWriter{w: out, f: framing{size: m.Bytes}}
	if err := compressFrames(ctx, r, fw, level, max(workers, 1)); err != nil {
		return 0, framing{}, err
	}
	if err := out.Sync(); err != nil {
		return 0, framing{}, fmt.Errorf("fsync: %w", err)
	}
	n, _ := out.Seek(0, io.SeekCurrent)
	if err := out.Close(); err != nil {
		return 0, framing{}, err
	}
	ok = true
	return n, fw.f, nil
}

// Compress writes the database file src as an archive dst, as a seal does,
// with workers goroutines: for benchmarks beside the zstd tool.
func Compress(ctx context.Context, src, dst string, workers int) (int64, error) {
	n, _, err := pack(ctx, src, dst, Meta{}, zstd.SpeedDefault, workers)
	return n, err
}

// compressFrames reads r in frameSize pieces, compresses each into a frame
// on one of workers goroutines, and writes the frames to w in order, one
// Write each. Every frame states its content size and ends in the checksum
// of its content.
func compressFrames(ctx context.Context, r io.Reader, w io.Writer, level zstd.EncoderLevel, workers int) error {
	if workers == 1 {
		// On this goroutine: no hand-over between goroutines.
		enc, err := getEncoder(level)
		if err != nil {
			return err
		}
		defer putEncoder(level, enc)
		in := make([]byte, frameSize)
		var out []byte
		for {
			n, err := io.ReadFull(r, in)
			if n > 0 {
				out = enc.EncodeAll(in[:n], out[:0])
				if _, werr := w.Write(out); werr != nil {
					return werr
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	type job struct {
		in, out []byte
		done    chan struct{}
	}
	free := make(chan *job, workers+1)
	for range workers + 1 {
		free <- &job{in: make([]byte, frameSize), done: make(chan struct{}, 1)}
	}
	todo := make(chan *job)
	inOrder := make(chan *job, workers+1)
	encs := make([]*zstd.Encoder, workers)
	for i := range encs {
		enc, err := getEncoder(level)
		if err != nil {
			for _, e := range encs[:i] {
				putEncoder(level, e)
			}
			return err
		}
		encs[i] = enc
	}
	for _, enc := range encs {
		defer putEncoder(level, enc)
		go func(enc *zstd.Encoder) {
			for j := range todo {
				j.out = enc.EncodeAll(j.in, j.out[:0])
				j.done <- struct{}{}
			}
		}(enc)
	}
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for j := range inOrder {
			<-j.done
			if err == nil {
				_, err = w.Write(j.out)
			}
			free <- j
		}
		writeErr <- err
	}()
	var readErr error
	for readErr == nil {
		j := <-free
		var n int
		n, readErr = io.ReadFull(r, j.in[:cap(j.in)])
		if readErr == io.ErrUnexpectedEOF || readErr == io.EOF {
			readErr = io.EOF
		}
		if n == 0 {
			free <- j
			break
		}
		if readErr == nil {
			readErr = ctx.Err()
		}
		j.in = j.in[:n]
		inOrder <- j
		todo <- j
	}
	close(todo)
	close(inOrder)
	err := <-writeErr
	if readErr != io.EOF {
		err = errors.Join(readErr, err)
	}
	return err
}

// decode unpacks the archive at path into w, within lim. It checks, before
// and while writing, that the content is a SQLite database no larger than
// its own header, the frame header and lim say, so a bomb or a foreign
// file is stopped early. It returns the metadata (zero if the file has none)
// and the bytes written. Errors are *BadArchiveError.
func decode(ctx context.Context, path string, lim Limits, w io.Writer) (Meta, int64, error) {
	f, err := openArchive(path)
	if err != nil {
		return Meta{}, 0, err
	}
	defer f.Close()
	bad := func(err error) error { return &BadArchiveError{path, err} }
	m, off, err := readMeta(f)
	if err != nil && !errors.Is(err, errNoMeta) {
		return m, 0, bad(err)
	}
	limit := lim.maxBytes()
	if m.Bytes > limit {
		return m, 0, bad(fmt.Errorf("unpacks to %d bytes, over the limit of %d", m.Bytes, limit))
	}
	// The frame header's content size, when present, bounds the output too.
	var hdr zstd.Header
	head := make([]byte, zstd.HeaderMaxSize)
	n, _ := f.ReadAt(head, off)
	if err := hdr.Decode(head[:n]); err != nil {
		return m, 0, bad(fmt.Errorf("not a zstd file: %w", err))
	}
	if hdr.Skippable {
		return m, 0, bad(errors.New("not a zstd file: no data frame after the metadata"))
	}
	if hdr.WindowSize > uint64(lim.maxWindow()) {
		return m, 0, bad(fmt.Errorf("zstd window of %d bytes, over the limit of %d", hdr.WindowSize, lim.maxWindow()))
	}
	if hdr.HasFCS && hdr.FrameContentSize > uint64(limit) {
		return m, 0, bad(fmt.Errorf("unpacks to %d bytes, over the limit of %d", hdr.FrameContentSize, limit))
	}
	if m.Bytes > 0 {
		limit = m.Bytes // what it was sealed from; more would be a forgery
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return m, 0, bad(err)
	}
	dec, err := zstd.NewReader(bufio.NewReaderSize(f, 256<<10),
		zstd.WithDecoderMaxWindow(uint64(lim.maxWindow())),
		zstd.WithDecoderMaxMemory(uint64(lim.maxWindow())),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true))
	if err != nil {
		return m, 0, bad(err)
	}
	defer dec.Close()
	cw := &checkedWriter{ctx: ctx, w: w, limit: limit}
	_, err = dec.WriteTo(cw) // whole blocks, without copying them through a buffer
	if err == nil && cw.n < int64(len(sqliteMagic)) {
		err = errors.New("not a SQLite database inside (too short)")
	}
	if err == nil && m.Bytes > 0 && cw.n != m.Bytes {
		err = fmt.Errorf("unpacked %d bytes, its metadata says %d: truncated or altered", cw.n, m.Bytes)
	}
	if err == nil && cw.expect > 0 && cw.n != cw.expect {
		err = fmt.Errorf("unpacked %d bytes, its SQLite header says %d: truncated", cw.n, cw.expect)
	}
	if err != nil {
		if ctx.Err() != nil {
			return m, cw.n, ctx.Err()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("truncated: %w", err)
		}
		return m, cw.n, bad(err)
	}
	return m, cw.n, nil
}

// checkedWriter passes bytes to w while they look like one SQLite database:
// the magic header first, and no more than limit bytes or the size the
// header states.
type checkedWriter struct {
	ctx    context.Context // stops a long decode when it ends
	w      io.Writer
	limit  int64
	n      int64
	head   []byte // the first 100 bytes, until checked
	expect int64  // the file size the SQLite header states; 0 if it states none
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.n+int64(len(p)) > c.limit {
		return 0, fmt.Errorf("unpacks to more than %d bytes: refusing (a zstd bomb, or over the limit)", c.limit)
	}
	if c.expect > 0 && c.n+int64(len(p)) > c.expect {
		return 0, fmt.Errorf("unpacks to more than the %d bytes its SQLite header states", c.expect)
	}
	if c.n < 100 {
		need := min(100-int(c.n), len(p))
		c.head = append(c.head, p[:need]...)
		if len(c.head) >= len(sqliteMagic) && !bytes.Equal(c.head[:len(sqliteMagic)], sqliteMagic) {
			return 0, errors.New("not a SQLite database inside")
		}
		if len(c.head) == 100 {
			c.expect = sqliteSize(c.head)
			if c.expect > c.limit {
				return 0, fmt.Errorf("its SQLite header states %d bytes, over the limit of %d", c.expect, c.limit)
			}
		}
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sqliteSize is the database size a SQLite header states, or 0 when the
// header's page count is not known to be valid.
func sqliteSize(h []byte) int64 {
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	changes, valid := binary.BigEndian.Uint32(h[24:28]), binary.BigEndian.Uint32(h[92:96])
	if pages == 0 || changes != valid {
		return 0
	}
	return pageSize * pages
}

// Unpack decodes the archive at path into a new file in dir (which should be
// private), within lim, and returns its path. On error nothing is left.
func Unpack(ctx context.Context, path, dir string, lim Limits) (string, Meta, error) {
	f, err := os.CreateTemp(dir, "unpack-*.db")
	if err != nil {
		return "", Meta{}, fmt.Errorf("unpack %s: %w", path, err)
	}
	out := f.Name()
	sf := &sparseFile{f: f}
	m, _, err := decode(ctx, path, lim, sf)
	if err == nil {
		err = f.Truncate(sf.off) // the size, if it ends in a hole
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return "", m, err
	}
	return out, m, nil
}

// sparseFile writes to f, leaving holes where whole 4 KiB blocks are zero:
// the free pages a seal cleared then cost neither writes nor disk.
type sparseFile struct {
	f   *os.File
	off int64
}

const sparseBlock = 4096

func (s *sparseFile) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), sparseBlock-int(s.off%sparseBlock))
		// Runs of data blocks are written in one call.
		j := 0
		for j < len(p) && !allZero(p[j:min(j+k, len(p))]) {
			j += k
			k = min(sparseBlock, len(p)-j)
		}
		if j > 0 {
			j = min(j, len(p))
			if _, err := s.f.WriteAt(p[:j], s.off); err != nil {
				return 0, err
			}
			s.off += int64(j)
			p = p[j:]
			continue
		}
		s.off += int64(k) // a hole
		p = p[k:]
	}
	return n, nil
}

func allZero(p []byte) bool {
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// syncDir fsyncs a directory, so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// privateTemp makes a 0700 directory for unpacked archives under parent
// (the system's temporary directory if empty).
func privateTemp(parent string) (string, error) {
	d, err := os.MkdirTemp(parent, "vibekit-archives-")
	if err != nil {
		return "", fmt.Errorf("make a private temporary directory: %w", err)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		os.RemoveAll(d)
		return "", err
	}
	return filepath.Clean(d), nil
}
