package vibekit

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	loc := time.FixedZone("test", 2*3600)
	now := time.Date(2026, 11, 27, 15, 30, 0, 0, loc)
	midnight := time.Date(2026, 11, 27, 0, 0, 0, 0, loc)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1732704000000", time.UnixMilli(1732704000000)},
		{"2024-01-31T10:00:00Z", time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)},
		{"2024-01-31T10:00:00+01:00", time.Date(2024, 1, 31, 9, 0, 0, 0, time.UTC)},
		{"2024-01-31", time.Date(2024, 1, 31, 0, 0, 0, 0, loc)},
		{"2024-01-31 10:05", time.Date(2024, 1, 31, 10, 5, 0, 0, loc)},
		{"now", now},
		{"today", midnight},
		{"yesterday", midnight.AddDate(0, 0, -1)},
		{"1 hour ago", now.Add(-time.Hour)},
		{"  3   days ago ", now.AddDate(0, 0, -3)},
		{"last week", now.AddDate(0, 0, -7)},
		{"last month", now.AddDate(0, -1, 0)},
		{"7d", now.AddDate(0, 0, -7)},
		{"30s", now.Add(-30 * time.Second)},
		{"90 minutes ago", now.Add(-90 * time.Minute)},
		{"2w", now.AddDate(0, 0, -14)},
		{"1 month", now.AddDate(0, -1, 0)},
		{"1y", now.AddDate(-1, 0, 0)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "3 fortnights ago", "last eon", "2024-13-01"} {
		if got, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", bad, got)
		}
	}
}

// An age that does not fit its type is refused rather than wrapped round
// to a time after now (which clear --older-than would delete up to).
func TestParseAge_TooLong(t *testing.T) {
	now := time.UnixMilli(1732704000000)
	for _, s := range []string{"2562048h", "153722868m", "9223372037s", "106751991168d", "15250284453w", "3443612619mo", "291672108y"} {
		if got, err := ParseAge(s, now); err == nil {
			t.Errorf("ParseAge(%q) = %v, want an error", s, got)
		}
	}
	for _, s := range []string{"2562047h", "106751991167d"} {
		got, err := ParseAge(s, now)
		if err != nil || !got.Before(now) {
			t.Errorf("ParseAge(%q) = %v, %v; want a time before now", s, got, err)
		}
	}
}
