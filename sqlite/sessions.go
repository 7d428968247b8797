package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// Sessions summarises the sessions among the rows that f selects, one per
// sessionId. f's time bounds select sessions by when they started, not rows,
// so a session is summarised whole; its limit, offset and order page the
// sessions, ordered by start time.
func (db *DB) Sessions(ctx context.Context, f vibekit.Filter) ([]vibekit.SessionSummary, error) {
	from, to := f.From, f.To
	rowFilter := f
	rowFilter.From, rowFilter.To = time.Time{}, time.Time{}
	rowFilter.Limit, rowFilter.Offset = 0, 0
	w, args := where(&rowFilter)
	// Each CTE is one pass over the rows. SQLite takes the bare columns of
	// an aggregate query with a single min() or max() from the row holding
	// that minimum or maximum: agent and mode of the first row, and the
	// status of the last end row.
	q := `WITH r AS (SELECT COALESCE(sessionId, '') AS sid, * FROM telemetry` + w + `),
	agg AS (SELECT sid, MIN(timestamp) AS st, MAX(timestamp) AS et, COUNT(*) AS n,
		TOTAL(eventType IS 'error') AS errs, TOTAL(eventType IS 'end') AS ends FROM r GROUP BY sid),
	first AS (SELECT sid, agentType, mode, MIN(timestamp) FROM r GROUP BY sid),
	lastEnd AS (SELECT sid, CASE WHEN json_valid(metadata) THEN CAST(json_extract(metadata, '$.status') AS TEXT) END AS status,
		MAX(timestamp) FROM r WHERE eventType IN ('end', 'error') GROUP BY sid),
	am AS (` + agentRows("r", "sid", "") + `),
	ag AS (SELECT sid, ` + agentSums + ` FROM am GROUP BY sid),
	tools AS (SELECT sid, group_concat(call, char(31)) AS names FROM (SELECT DISTINCT sid, call FROM am WHERE call IS NOT NULL) GROUP BY sid)
	SELECT agg.sid, first.agentType, first.mode, CAST(st AS INTEGER), CAST(et AS INTEGER), n, CAST(errs AS INTEGER), CAST(ends AS INTEGER), lastEnd.status, ` + agentCols + `, tools.names
	FROM agg JOIN first ON first.sid = agg.sid LEFT JOIN lastEnd ON lastEnd.sid = agg.sid
	LEFT JOIN ag ON ag.sid = agg.sid LEFT JOIN tools ON tools.sid = agg.sid`
	var conds []string
	if !from.IsZero() {
		conds, args = append(conds, `st >= ?`), append(args, from.UnixMilli())
	}
	if !to.IsZero() {
		conds, args = append(conds, `st <= ?`), append(args, to.UnixMilli())
	}
	for i, c := range conds {
		if i == 0 {
			q += ` WHERE ` + c
		} else {
			q += ` AND ` + c
		}
	}
	if f.Order == vibekit.OrderDesc {
		q += ` ORDER BY st DESC, agg.sid DESC`
	} else {
		q += ` ORDER BY st, agg.sid`
	}
	if f.Limit > 0 || f.Offset > 0 {
		limit := int64(f.Limit)
		if limit <= 0 {
			limit = -1
		}
		q += ` LIMIT ? OFFSET ?`
		args = append(args, limit, f.Offset)
	}
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	defer rows.Close()
	out := []vibekit.SessionSummary{}
	for rows.Next() {
		var (
			s                   vibekit.SessionSummary
			agent, mode, status sql.NullString
			start, end          sql.NullInt64
			ends                int64
			usage               usageScan
			tools               sql.NullString
		)
		dest := append([]any{&s.SessionID, &agent, &mode, &start, &end, &s.EventCount, &s.ErrorCount, &ends, &status}, usage.dest()...)
		if err := rows.Scan(append(dest, &tools)...); err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		s.AgentUsage, s.Tools = usage.usage(), joinTools(tools.String)
		s.AgentType, s.Mode = agent.String, mode.String
		s.StartTime, s.EndTime, s.Duration = start.Int64, end.Int64, end.Int64-start.Int64
		s.Status = vibekit.SessionStatus(ends > 0, status.String, s.ErrorCount)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return out, nil
}

// Session summarises one session; the error wraps vibekit.ErrNotFound if it
// has no rows.
func (db *DB) Session(ctx context.Context, id string) (*vibekit.SessionSummary, error) {
	ss, err := db.Sessions(ctx, vibekit.Filter{SessionIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("session %q: %w", id, vibekit.ErrNotFound)
	}
	return &ss[0], nil
}
