package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	vibekit "github.com/vibekit/vibekit-pipe"
)

// recordColumns are the telemetry columns in the guide's order.
const recordColumns = `id, sessionId, eventType, agentType, mode, prompt, streamData, sandboxId, repoUrl, metadata, timestamp`

// where renders the conditions of f as a WHERE clause (or "") and its arguments.
func where(f *vibekit.Filter) (string, []any) {
	var (
		conds []string
		args  []any
	)
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		conds = append(conds, col+` IN (?`+strings.Repeat(`,?`, len(vals)-1)+`)`)
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if !f.From.IsZero() {
		conds = append(conds, `timestamp >= ?`)
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		conds = append(conds, `timestamp <= ?`)
		args = append(args, f.To.UnixMilli())
	}
	in(`sessionId`, f.SessionIDs)
	types := make([]string, len(f.EventTypes))
	for i, t := range f.EventTypes {
		types[i] = string(t)
	}
	in(`eventType`, types)
	in(`agentType`, f.AgentTypes)
	in(`mode`, f.Modes)
	if f.Contains != "" {
		// instr, not LIKE: no wildcards to escape, and case-sensitive as grep is.
		conds = append(conds, `(instr(prompt, ?) > 0 OR instr(streamData, ?) > 0)`)
		args = append(args, f.Contains, f.Contains)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
		// json_valid first: a row whose metadata is not JSON (written by
		// another tool) does not match, rather than failing the query.
		conds = append(conds, `CASE WHEN json_valid(metadata) THEN CAST(json_extract(metadata, ?) AS TEXT) END = ?`)
		args = append(args, jsonPath(k), f.Metadata[k])
	}
	if len(f.Sources) > 0 {
		conds = append(conds, `EXISTS (SELECT 1 FROM vk_spans sp JOIN vk_sources so ON so.id = sp.source_id
			WHERE so.name IN (?`+strings.Repeat(`,?`, len(f.Sources)-1)+`) AND telemetry.id BETWEEN sp.first_id AND sp.last_id)`)
		for _, s := range f.Sources {
			args = append(args, s)
		}
	}
	if len(conds) == 0 {
		return "", args
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// jsonPath turns a dotted key (user.id) into a JSON path ($."user"."id").
func jsonPath(key string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, part := range strings.Split(key, ".") {
		b.WriteString(`."`)
		b.WriteString(strings.ReplaceAll(part, `"`, `\"`))
		b.WriteString(`"`)
	}
	return b.String()
}

// selectRecords renders the query for f.
func selectRecords(f *vibekit.Filter) (string, []any) {
	w, args := where(f)
	order := ` ORDER BY timestamp, id`
	if f.Order == vibekit.OrderDesc {
		order = ` ORDER BY timestamp DESC, id DESC`
	}
	q := `SELECT ` + recordColumns + ` FROM telemetry` + w + order
	if f.Limit > 0 || f.Offset > 0 {
		limit := int64(f.Limit)
		if limit <= 0 {
			limit = -1
		}
		q += ` LIMIT ? OFFSET ?`
		args = append(args, limit, f.Offset)
	}
	return q, args
}

// Scan calls fn with each record that f selects, in f's order. The record is
// reused between calls; fn must copy what it keeps.
func (db *DB) Scan(ctx context.Context, f vibekit.Filter, fn func(*vibekit.Record) error) error {
	q, args := selectRecords(&f)
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query records: %w", err)
	}
	defer rows.Close()
	var (
		r                                 vibekit.Record
		mode, prompt, data, sandbox, repo sql.NullString
		session, event, agent             sql.NullString
		meta                              sql.RawBytes
		ts                                sql.NullInt64
	)
	for rows.Next() {
		if err := rows.Scan(&r.ID, &session, &event, &agent, &mode, &prompt, &data, &sandbox, &repo, &meta, &ts); err != nil {
			return fmt.Errorf("read record: %w", err)
		}
		r.SessionID, r.EventType, r.AgentType = session.String, vibekit.EventType(event.String), agent.String
		r.Mode, r.Prompt, r.StreamData, r.SandboxID, r.RepoURL = mode.String, prompt.String, data.String, sandbox.String, repo.String
		r.Metadata, r.Timestamp = json.RawMessage(meta), ts.Int64
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	return nil
}

// GetEvents returns the records f selects.
func (db *DB) GetEvents(ctx context.Context, f vibekit.Filter) ([]vibekit.Record, error) {
	var out []vibekit.Record
	err := db.Scan(ctx, f, func(r *vibekit.Record) error {
		c := *r
		c.Metadata = append([]byte(nil), r.Metadata...)
		if len(c.Metadata) == 0 {
			c.Metadata = nil
		}
		out = append(out, c)
		return nil
	})
	return out, err
}
