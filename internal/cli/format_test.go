package cli

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestCSV_RoundTrip writes values with csvWriter and reads them back with
// csvReader: every byte must survive.
func TestCSV_RoundTrip(t *testing.T) {
	rows := [][]string{
		{"plain", "with,comma", `with "quotes"`},
		{"line\nbreak", "crlf\r\ninside", "lone\rcr"},
		{"", " spaces ", "日本語 ünïcödé 😀"},
		{`""`, `"`, "trailing\n"},
		{"tab\there", `back\slash`, "\u2028"},
	}
	var buf bytes.Buffer
	w := &csvWriter{w: newRowWriter("csv", &buf, 0, false).(*csvWriter).w}
	w.header([]column{{"a", kindPlain}, {"b", kindPlain}, {"c", kindPlain}})
	for _, r := range rows {
		vals := make([]any, len(r))
		for i, s := range r {
			vals[i] = s
		}
		if err := w.row(vals); err != nil {
			t.Fatal(err)
		}
	}
	w.close()
	r := newCSVReader(&buf)
	header, line, err := r.read()
	if err != nil || !reflect.DeepEqual(header, []string{"a", "b", "c"}) || line != 1 {
		t.Fatalf("header = %q at line %d, %v", header, line, err)
	}
	wantLines := []int{2, 3, 6, 7, 9}
	for i, want := range rows {
		got, line, err := r.read()
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("row %d = %q, want %q", i, got, want)
		}
		if line != wantLines[i] {
			t.Errorf("row %d starts on line %d, want %d", i, line, wantLines[i])
		}
	}
	if _, _, err := r.read(); err != io.EOF {
		t.Errorf("after the last row: %v, want EOF", err)
	}
}

func TestCSVReader_Errors(t *testing.T) {
	for _, in := range []string{"a,\"open\n", "\"a\"b,c\n"} {
		r := newCSVReader(strings.NewReader(in))
		if _, _, err := r.read(); err == nil || err == io.EOF {
			t.Errorf("read(%q) error = %v, want a syntax error", in, err)
		}
	}
	// LF line ends and a missing final newline are fine.
	r := newCSVReader(strings.NewReader("a,b\nc,d"))
	r.read()
	if got, _, err := r.read(); err != nil || !reflect.DeepEqual(got, []string{"c", "d"}) {
		t.Errorf("last row = %q, %v", got, err)
	}
}

func TestFitWidths(t *testing.T) {
	tests := []struct {
		widths []int
		total  int
		want   []int
	}{
		{[]int{2, 10, 30}, 0, []int{2, 10, 30}},        // no limit
		{[]int{2, 10, 30}, 100, []int{2, 10, 30}},      // fits
		{[]int{2, 10, 30}, 30, []int{2, 10, 14}},       // the wide one gives way
		{[]int{2, 40, 30}, 30, []int{2, 12, 12}},       // two wide ones share
		{[]int{20, 20, 20}, 6, []int{4, 4, 4}},         // never below 4
		{[]int{3, 50, 50, 3}, 40, []int{3, 14, 14, 3}}, // narrow ones kept
	}
	for _, tt := range tests {
		got := append([]int(nil), tt.widths...)
		fitWidths(got, tt.total)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("fitWidths(%v, %d) = %v, want %v", tt.widths, tt.total, got, tt.want)
		}
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		s    string
		w    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello world", 6, "hello…"},
		{"日本語テキスト", 7, "日本語…"},
		{"😀😀😀", 4, "😀…"},
	}
	for _, tt := range tests {
		if got := cut(tt.s, tt.w); got != tt.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tt.s, tt.w, got, tt.want)
		}
		if got := displayWidth(cut(tt.s, tt.w)); got > tt.w {
			t.Errorf("cut(%q, %d) is %d wide", tt.s, tt.w, got)
		}
	}
}

func TestFormatHuman(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{formatDuration(154000), "2m 34s"},
		{formatDuration(450), "450ms"},
		{formatDuration(2500), "2.5s"},
		{formatDuration(3723000), "1h 2m"},
		{formatDuration(90000000), "1d 1h"},
		{formatCount(1234), "1,234"},
		{formatCount(1234567), "1,234,567"},
		{formatCount(12), "12"},
		{formatBytes(15200000), "15.2 MB"},
		{formatBytes(512), "512 B"},
		{formatPercent(0.8), "80%"},
		{formatPercent(0.001), "<1%"},
		{progressLine(50, 100, 3, 10), "[#####-----]  50%  50 B of 100 B  3 records"},
		{progressLine(2000, 0, 1, 10), "importing: 2.0 kB read, 1 record"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestTableWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newRowWriter("table", &buf, 30, false)
	w.header([]column{{"id", kindPlain}, {"text", kindPlain}, {"timestamp", kindTime}})
	w.row([]any{int64(1), "a long value that will not fit\non one line", int64(0)})
	w.row([]any{int64(22), nil, nil})
	w.close()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table = %q", buf.String())
	}
	for _, l := range lines {
		if displayWidth(l) > 30 {
			t.Errorf("line %q is wider than 30", l)
		}
		if strings.HasSuffix(l, " ") {
			t.Errorf("line %q ends in spaces", l)
		}
	}
	if !strings.HasPrefix(lines[1], "1   a long") || !strings.Contains(lines[1], "…") {
		t.Errorf("row = %q", lines[1])
	}
}
