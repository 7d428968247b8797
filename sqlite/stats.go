package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// StatsOptions adds optional parts to Stats.
type StatsOptions struct {
	// GroupBy names a column to count events by: agentType, eventType,
	// mode, sessionId, sandboxId or repoUrl ("" for none).
	GroupBy string
	// By is "hour" or "day" for a timeline of event counts ("" for none).
	By string
}

// GroupColumns are the columns Stats can group by.
var GroupColumns = []string{"agentType", "eventType", "mode", "sessionId", "sandboxId", "repoUrl"}

// maxBuckets bounds a timeline's empty buckets: gaps longer than this are
// not filled in.
const maxBuckets = 10000

// Stats summarises the events that f selects (its paging and order are
// ignored): counts, agents and their shares, the date range, the database
// size, the average session duration, and what retention has pruned.
func (db *DB) Stats(ctx context.Context, f vibekit.Filter, opts StatsOptions) (*vibekit.Stats, error) {
	if opts.GroupBy != "" && !slices.Contains(GroupColumns, opts.GroupBy) {
		return nil, fmt.Errorf("stats: cannot group by %q: use one of %s", opts.GroupBy, strings.Join(GroupColumns, ", "))
	}
	if opts.By != "" && opts.By != "hour" && opts.By != "day" {
		return nil, fmt.Errorf("stats: timeline by %q: use hour or day", opts.By)
	}
	f.Limit, f.Offset = 0, 0
	w, args := where(&f)
	s := &vibekit.Stats{EventTypes: map[vibekit.EventType]int64{}, GroupBy: opts.GroupBy, By: opts.By}
	err := db.snapshot(ctx, func(c *sql.Conn) error {
		var from, to sql.NullInt64
		// A timestamp another program wrote may be a REAL or TEXT: read as an integer.
		err := c.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT sessionId), CAST(MIN(timestamp) AS INTEGER), CAST(MAX(timestamp) AS INTEGER),
			COALESCE(SUM(eventType = 'error'), 0) FROM telemetry`+w, args...).Scan(&s.TotalEvents, &s.Sessions, &from, &to, &s.Errors)
		if err != nil {
			return err
		}
		s.DateRange = vibekit.TimeRange{From: from.Int64, To: to.Int64}
		var avg sql.NullFloat64
		err = c.QueryRowContext(ctx, `SELECT AVG(d) FROM (SELECT MAX(timestamp) - MIN(timestamp) AS d FROM telemetry`+w+` GROUP BY sessionId)`, args...).Scan(&avg)
		if err != nil {
			return err
		}
		s.AverageSessionDuration = int64(avg.Float64 + 0.5)
		if err := scanCounts(ctx, c, `eventType`, w, args, func(v string, n int64) { s.EventTypes[vibekit.EventType(v)] = n }); err != nil {
			return err
		}
		if s.Agents, err = shares(ctx, c, "agentType", w, args, s.TotalEvents); err != nil {
			return err
		}
		if opts.GroupBy != "" {
			if s.Groups, err = shares(ctx, c, opts.GroupBy, w, args, s.TotalEvents); err != nil {
				return err
			}
		}
		if opts.By != "" {
			if s.Timeline, err = timeline(ctx, c, opts.By, w, args); err != nil {
				return err
			}
		}
		if s.Pruned, err = pruned(ctx, c); err != nil {
			return err
		}
		return agentStats(ctx, c, w, args, s)
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	if s.DatabaseSize, err = db.Size(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return s, nil
}

// Size is the bytes the database takes on disk: the file and its WAL.
func (db *DB) Size() (int64, error) {
	var n int64
	for _, p := range []string{db.Path, db.Path + "-wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != db.Path {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("database size: %w", err)
		}
		n += fi.Size()
	}
	return n, nil
}

// scanCounts calls fn with each value of col among the rows and its count.
func scanCounts(ctx context.Context, c *sql.Conn, col, w string, args []any, fn func(string, int64)) error {
	// '' and NULL are one value (none): we write '', other tools NULL.
	rows, err := c.QueryContext(ctx, `SELECT COALESCE(`+col+`, ''), COUNT(*) FROM telemetry`+w+` GROUP BY 1`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v sql.NullString
		var n int64
		if err := rows.Scan(&v, &n); err != nil {
			return err
		}
		fn(v.String, n)
	}
	return rows.Err()
}

// shares counts the events and sessions of each value of col, most events first.
func shares(ctx context.Context, c *sql.Conn, col, w string, args []any, total int64) ([]vibekit.Share, error) {
	rows, err := c.QueryContext(ctx, `SELECT COALESCE(`+col+`, ''), COUNT(*), COUNT(DISTINCT sessionId) FROM telemetry`+w+
		` GROUP BY 1 ORDER BY 2 DESC, 1`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []vibekit.Share{}
	for rows.Next() {
		var v sql.NullString
		var sh vibekit.Share
		if err := rows.Scan(&v, &sh.Events, &sh.Sessions); err != nil {
			return nil, err
		}
		sh.Value = v.String
		if total > 0 {
			sh.Share = float64(sh.Events) / float64(total)
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// timeline counts events per local hour or day, oldest first, with the empty
// buckets between the first and the last filled in.
func timeline(ctx context.Context, c *sql.Conn, by, w string, args []any) ([]vibekit.Bucket, error) {
	sqlFormat, goLayout := `%Y-%m-%d`, "2006-01-02"
	if by == "hour" {
		sqlFormat, goLayout = `%Y-%m-%d %H:00`, "2006-01-02 15:04"
	}
	// SQLite's localtime and Go's time.Local both follow TZ.
	rows, err := c.QueryContext(ctx, `SELECT strftime('`+sqlFormat+`', timestamp / 1000, 'unixepoch', 'localtime') AS b, COUNT(*)
		FROM telemetry`+w+` GROUP BY b ORDER BY b`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var got []vibekit.Bucket
	for rows.Next() {
		var label sql.NullString
		var n int64
		if err := rows.Scan(&label, &n); err != nil {
			return nil, err
		}
		t, err := time.ParseInLocation(goLayout, label.String, time.Local)
		if err != nil {
			continue // a NULL or absurd timestamp has no bucket
		}
		got = append(got, vibekit.Bucket{Start: t.UnixMilli(), Label: label.String, Events: n})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return fillBuckets(got, by, goLayout), nil
}

// fillBuckets inserts empty buckets into the gaps of got, unless that would
// make more than maxBuckets.
func fillBuckets(got []vibekit.Bucket, by, layout string) []vibekit.Bucket {
	if len(got) < 2 {
		return got
	}
	next := func(t time.Time) time.Time {
		if by == "hour" {
			return t.Add(time.Hour).Truncate(time.Hour)
		}
		y, m, d := t.Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
	}
	first, last := time.UnixMilli(got[0].Start), time.UnixMilli(got[len(got)-1].Start)
	n := 0
	for t := first; !t.After(last); t = next(t) {
		if n++; n > maxBuckets {
			return got
		}
	}
	out := make([]vibekit.Bucket, 0, n)
	i := 0
	for t := first; !t.After(last); t = next(t) {
		label := t.Format(layout)
		if i < len(got) && got[i].Label == label {
			out = append(out, got[i])
			i++
			continue
		}
		out = append(out, vibekit.Bucket{Start: t.UnixMilli(), Label: label})
	}
	// Labels that the walk did not meet (a DST quirk) are kept, in order.
	out = append(out, got[i:]...)
	return out
}

// AgentStats summarises each agent type among the events f selects, most
// events first.
func (db *DB) AgentStats(ctx context.Context, f vibekit.Filter) ([]vibekit.AgentStats, error) {
	f.Limit, f.Offset = 0, 0
	w, args := where(&f)
	rows, err := db.db.QueryContext(ctx, `WITH s AS (
		SELECT COALESCE(agentType, '') AS agentType, COUNT(*) AS n, TOTAL(eventType IS 'error') AS e, MAX(timestamp) - MIN(timestamp) AS d,
			MIN(timestamp) AS first, MAX(timestamp) AS last
		FROM telemetry`+w+` GROUP BY 1, sessionId)
		SELECT agentType, SUM(n), COUNT(*), CAST(SUM(e) AS INTEGER), AVG(d), MIN(first), MAX(last) FROM s
		GROUP BY agentType ORDER BY 2 DESC, 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("agent stats: %w", err)
	}
	defer rows.Close()
	out := []vibekit.AgentStats{}
	for rows.Next() {
		var (
			a           vibekit.AgentStats
			agent       sql.NullString
			avg         sql.NullFloat64
			first, last sql.NullInt64
		)
		if err := rows.Scan(&agent, &a.Events, &a.Sessions, &a.Errors, &avg, &first, &last); err != nil {
			return nil, fmt.Errorf("agent stats: %w", err)
		}
		a.AgentType, a.AverageSessionDuration = agent.String, int64(avg.Float64+0.5)
		a.FirstEvent, a.LastEvent = first.Int64, last.Int64
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agent stats: %w", err)
	}
	return out, nil
}

// IngestStats sums the ingest counters of the runs that committed between
// from and to (zero times leave that side open). vibekit-pipe updates its
// run's counters with every commit, so another process can read them.
func (db *DB) IngestStats(ctx context.Context, from, to time.Time) (*vibekit.IngestStats, error) {
	var (
		conds []string
		args  []any
	)
	if !from.IsZero() {
		conds, args = append(conds, `updated >= ?`), append(args, from.UnixMilli())
	}
	if !to.IsZero() {
		conds, args = append(conds, `started <= ?`), append(args, to.UnixMilli())
	}
	w := ""
	if len(conds) > 0 {
		w = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	s := &vibekit.IngestStats{}
	err := db.snapshot(ctx, func(c *sql.Conn) error {
		var flushMs float64
		var active int64
		var first, last sql.NullInt64
		err := c.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(lines), 0), COALESCE(SUM(bytes), 0), COALESCE(SUM(rows), 0),
			COALESCE(SUM(rejects), 0), COALESCE(SUM(skipped), 0), COALESCE(SUM(flushes), 0), COALESCE(SUM(flush_ms_total), 0),
			COALESCE(SUM(updated - started), 0), MIN(started), MAX(updated) FROM vk_runs`+w, args...).Scan(
			&s.Runs, &s.LinesRead, &s.BytesRead, &s.TotalEventsWritten, &s.Rejects, &s.Skipped, &s.Flushes, &flushMs, &active, &first, &last)
		if err != nil {
			return err
		}
		s.FirstRun, s.LastUpdate = first.Int64, last.Int64
		if s.Flushes > 0 {
			s.AverageFlushTime = flushMs / float64(s.Flushes)
			s.EventsPerFlush = float64(s.TotalEventsWritten) / float64(s.Flushes)
		}
		if s.TotalEventsWritten > 0 {
			s.BufferEfficiency = max(0, 1-float64(s.Flushes)/float64(s.TotalEventsWritten))
		}
		if active > 0 {
			s.EventsPerSecond = float64(s.TotalEventsWritten) / (float64(active) / 1000)
			s.FlushesPerSecond = float64(s.Flushes) / (float64(active) / 1000)
		}
		if err := followReports(ctx, c, w, args, s); err != nil {
			return err
		}
		if s.Runs == 0 {
			return nil
		}
		// A file not yet migrated to 0008 has no such counters: none.
		var has int
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('vk_runs') WHERE name = 'not_stored'`).Scan(&has); err != nil {
			return err
		}
		if has > 0 {
			err := c.QueryRowContext(ctx, `SELECT COALESCE(SUM(refused), 0), COALESCE(SUM(not_stored), 0) FROM vk_runs`+w, args...).Scan(&s.Refused, &s.NotStored)
			if err != nil {
				return err
			}
		}
		err = c.QueryRowContext(ctx, `SELECT flush_ms_last FROM vk_runs`+w+` ORDER BY updated DESC, id DESC LIMIT 1`, args...).Scan(&s.LastFlushTime)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ingest stats: %w", err)
	}
	return s, nil
}

// followReports counts what following reported (vk_warnings) in the time
// range w selects by run, read as the time of each report.
func followReports(ctx context.Context, c *sql.Conn, w string, args []any, s *vibekit.IngestStats) error {
	w = strings.NewReplacer("updated >=", "time >=", "started <=", "time <=").Replace(w)
	err := c.QueryRowContext(ctx, `SELECT COALESCE(SUM(kind = 'gap'), 0), COALESCE(SUM(CASE WHEN kind = 'gap' THEN bytes END), 0),
		COALESCE(SUM(kind = 'reread'), 0), COALESCE(SUM(kind = 'claim'), 0) FROM vk_warnings`+w, args...).Scan(
		&s.FollowGaps, &s.FollowGapBytes, &s.FollowRereads, &s.RefusedClaims)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return nil // a database of an earlier version, opened read-only
	}
	return err
}
