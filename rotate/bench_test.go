package rotate

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vibekit/vibekit-pipe/sqlite"
)

// BenchmarkSeal seals a copy of the database VIBEKIT_BENCH_DB (make bench
// makes one of ~100 MB with vibekit-pipe) and reports the time of each step
// and the compression ratio. It is skipped without that variable.
func BenchmarkSeal(b *testing.B) {
	src := os.Getenv("VIBEKIT_BENCH_DB")
	if src == "" {
		b.Skip("VIBEKIT_BENCH_DB names no database to seal")
	}
	var sw, comp, verify, fin float64
	var ratio float64
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "telemetry.db")
		copyFile(b, src, path)
		db, err := sqlite.Open(path, sqlite.Options{EnableIndexes: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := (&Sealer{DB: db}).Seal(context.Background(), 0)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		sw += res.Switch.Seconds()
		comp += res.Compress.Seconds()
		verify += res.Verify.Seconds()
		fin += res.Finish.Seconds()
		ratio = float64(res.Seal.Bytes) / float64(res.Size)
		b.SetBytes(res.Seal.Bytes)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(sw/n*1000, "switch-ms")
	b.ReportMetric(comp/n*1000, "compress-ms")
	b.ReportMetric(verify/n*1000, "verify-ms")
	b.ReportMetric(fin/n*1000, "finish-ms")
	b.ReportMetric(ratio, "ratio")
}

func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}
