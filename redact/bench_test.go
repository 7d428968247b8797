package redact

import (
	"bufio"
	"bytes"
	"os/exec"
	"testing"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// corpus is vkgen's realistic events (about 880 bytes a line, prose, code,
// JSON metadata), decoded as vibekit-pipe stores them.
func corpus(b *testing.B) (recs []vibekit.Record, bytesPerRecord int64) {
	b.Helper()
	out, err := exec.Command("go", "run", "../tools/vkgen", "-n", "20000", "-seed", "1").Output()
	if err != nil {
		b.Skipf("go run tools/vkgen: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	now := time.Now()
	for sc.Scan() {
		var r vibekit.Record
		if kind, _ := vibekit.DecodeLine(sc.Bytes(), now, &r); kind == vibekit.LineRecord {
			recs = append(recs, r)
		}
	}
	return recs, int64(len(out) / len(recs))
}

// BenchmarkRecord redacts vkgen's records: one op is one record, so ns/op
// is the cost per record and MB/s is over the lines' bytes. The corpus has
// no secrets: this is the cost every record pays.
func BenchmarkRecord(b *testing.B) {
	recs, size := corpus(b)
	ticket, _ := ParsePattern(`ticket=TICKET-[0-9]{8}`)
	for _, bc := range []struct {
		name string
		o    Options
	}{
		{"secrets", Options{Level: Secrets}},
		{"all", Options{Level: All}},
		{"secrets+pattern", Options{Level: Secrets, Patterns: []NamedPattern{ticket}}},
		{"secrets+hash", Options{Level: Secrets, HashFields: []string{"metadata.userId"}, HashKey: []byte("k")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := MustNew(b, bc.o)
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rec := recs[i%len(recs)]
				r.Record(&rec)
			}
		})
	}
}

// BenchmarkRecord_WithSecret is a record that has secrets in its stream
// data and metadata: the slow path.
func BenchmarkRecord_WithSecret(b *testing.B) {
	r := MustNew(b, Options{Level: Secrets})
	base := vibekit.Record{
		StreamData: "I set OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z and ran `go test ./...`; the DSN is postgres://app:hunter2@db:5432/app. " +
			"Then I pushed with ghp_abcdefghijklmnopqrstuvwxyz0123456789 to the fork.",
		Metadata: []byte(`{"model":{"name":"gpt-5","provider":"openai"},"env":{"AWS_ACCESS_KEY_ID":"AKIAIOSFODNN7EXAMPLE"},"cwd":"/workspace"}`),
	}
	b.SetBytes(int64(len(base.StreamData) + len(base.Metadata)))
	b.ReportAllocs()
	for b.Loop() {
		rec := base
		r.Record(&rec)
	}
}
