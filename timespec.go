package vibekit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a point in time as the CLI and the query API accept it:
//
//	1732704000000                 Unix milliseconds
//	2024-01-31T10:00:00Z          RFC 3339 (a zone offset may follow)
//	2024-01-31 10:00[:05]         local time
//	2024-01-31                    local midnight
//	now, today, yesterday         today and yesterday start at local midnight
//	1 hour ago, 3 days ago        an amount and a unit, before now
//	last week, last month         one unit before now
//	7d, 12h, 30m, 2w              an age, before now (as --older-than takes)
//
// Units: s, sec, second; m, min, minute; h, hour; d, day; w, week; month; y, year
// (plurals too). Months and years are calendar units.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty time")
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	phrase := strings.ToLower(strings.Join(strings.Fields(s), " "))
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	switch phrase {
	case "now":
		return now, nil
	case "today":
		return midnight, nil
	case "yesterday":
		return midnight.AddDate(0, 0, -1), nil
	}
	if rest, ok := strings.CutPrefix(phrase, "last "); ok {
		return before(now, 1, rest, s)
	}
	phrase = strings.TrimSuffix(phrase, " ago")
	return ParseAge(phrase, now)
}

// ParseAge reads an age such as "7d", "30 days", "1 month" or "12h" and returns
// the time that far before now.
func ParseAge(s string, now time.Time) (time.Time, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return time.Time{}, fmt.Errorf("cannot read %q as a time: try 2024-01-31, 2024-01-31T10:00:00Z, Unix milliseconds, yesterday, \"1 hour ago\", \"last week\" or 7d", s)
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot read %q as an age: %w", s, err)
	}
	return before(now, n, strings.TrimSpace(s[i:]), s)
}

// maxAgeDays is the longest age in days whose time, before now, is still
// in the range of Unix milliseconds in an int64.
const maxAgeDays = math.MaxInt64 / int64(24*time.Hour/time.Millisecond)

// before returns now minus n of unit; whole is the text being parsed, for errors.
func before(now time.Time, n int, unit, whole string) (time.Time, error) {
	unit = strings.TrimSuffix(unit, "s")
	if unit == "" {
		unit = "s" // "30s" lost its unit to TrimSuffix
	}
	var d time.Duration
	days := 0 // at most, of one unit of the calendar
	switch unit {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hr", "hour":
		d = time.Hour
	case "d", "day":
		days = 1
	case "w", "wk", "week":
		days = 7
	case "mo", "mon", "month":
		days = 31
	case "y", "yr", "year":
		days = 366
	default:
		return time.Time{}, fmt.Errorf("cannot read %q as a time: unknown unit %q (use s, m, h, d, w, month or y)", whole, unit)
	}
	// An age too long for its type would wrap round to one in the future
	// (and clear --older-than would delete everything): refused.
	if d > 0 && int64(n) > math.MaxInt64/int64(d) {
		return time.Time{}, fmt.Errorf("%q does not fit in a duration: at most %d%s", whole, math.MaxInt64/int64(d), unit)
	}
	if days > 0 && int64(n) > maxAgeDays/int64(days) {
		return time.Time{}, fmt.Errorf("%q does not fit in Unix milliseconds: at most %d %s", whole, maxAgeDays/int64(days), unit)
	}
	switch unit {
	case "d", "day":
		return now.AddDate(0, 0, -n), nil
	case "w", "wk", "week":
		return now.AddDate(0, 0, -7*n), nil
	case "mo", "mon", "month":
		return now.AddDate(0, -n, 0), nil
	case "y", "yr", "year":
		return now.AddDate(-n, 0, 0), nil
	}
	return now.Add(-time.Duration(n) * d), nil
}
