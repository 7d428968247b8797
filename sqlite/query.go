package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
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
	if f.MetadataOnly != "" {
		// Literal, not a parameter: so the planner matches idx_usage's WHERE.
		conds = append(conds, metadataKeyCond(f.MetadataOnly))
	}
	for _, k := range f.HasMetadata {
		// instr first: it passes over most rows without parsing their JSON.
		conds = append(conds, `CASE WHEN instr(metadata, ?) > 0 AND json_valid(metadata) THEN json_type(metadata, ?) END NOT IN ('null')`)
		args = append(args, `"`+k+`"`, jsonPath(k))
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

// metadataKeyExpr is the value of a top-level metadata key as JSON text,
// NULL where the metadata has no such key or is not JSON. key must be a
// safeKey (Filter.MetadataOnly says so; scanOn checks it).
func metadataKeyExpr(key string) string {
	return `(CASE WHEN json_valid(metadata) THEN metadata -> '$.` + key + `' END)`
}

// metadataKeyCond holds for the rows whose metadata may have key: its name
// in quotes appears in the text.
func metadataKeyCond(key string) string { return `instr(metadata, '"` + key + `"') > 0` }

// safeKey reports whether key can be written into SQL and a JSON path as it is.
func safeKey(key string) bool {
	for _, c := range key {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return key != ""
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
func selectRecords(f *vibekit.Filter) (string, []any) { return selectRecordsFrom("telemetry", f) }

// selectRecordsFrom is selectRecords on another table of the same columns;
// the alias keeps the filter's "telemetry.id".
func selectRecordsFrom(table string, f *vibekit.Filter) (string, []any) {
	w, args := where(f)
	order := ` ORDER BY timestamp, id`
	if f.Order == vibekit.OrderDesc {
		order = ` ORDER BY timestamp DESC, id DESC`
	}
	from := ` FROM telemetry`
	if table != "telemetry" {
		from = ` FROM ` + table + ` AS telemetry`
	}
	cols := recordColumns
	if f.MetadataOnly != "" {
		// The other columns are left out: a report reads its key of many
		// rows, and of idx_usage alone when the key is the usage.
		cols = `id, sessionId, eventType, agentType, NULL, NULL, NULL, NULL, NULL, ` + metadataKeyExpr(f.MetadataOnly) + `, timestamp`
	}
	q := `SELECT ` + cols + from + w + order
	if f.Limit > 0 || f.Offset > 0 {
		limit := int64(f.Limit)
		if limit <= 0 {
			limit = -1
		}
		q += ` LIMIT ? OFFSET ?`
		args = append(args, limit, int64(f.Offset))
	}
	return q, args
}

// scanChunk is how many records the reading goroutine hands over at once.
const scanChunk = 256

// Scan calls fn with each record that f selects, in f's order. The record is
// valid only during the call; fn must copy what it keeps.
//
// Rows are read on a second goroutine, at the driver level, while fn runs on
// this one: reading and encoding overlap, and dump outpaces sqlite3 -json.
func (db *DB) Scan(ctx context.Context, f vibekit.Filter, fn func(*vibekit.Record) error) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("query records: %w", err)
	}
	defer conn.Close()
	return scanOn(ctx, conn, "telemetry", f, fn)
}

// scanOn is Scan on one connection (in its transaction, if one is open).
func scanOn(ctx context.Context, conn *sql.Conn, table string, f vibekit.Filter, fn func(*vibekit.Record) error) error {
	if f.MetadataOnly != "" {
		if !safeKey(f.MetadataOnly) {
			return fmt.Errorf("query records: metadata key %q: use letters, digits and underscores", f.MetadataOnly)
		}
		// The row's metadata is the key alone: {"key": value}; rows whose
		// text named the key without having it are left out.
		inner, prefix := fn, `{"`+f.MetadataOnly+`":`
		fn = func(r *vibekit.Record) error {
			if len(r.Metadata) == 0 {
				return nil
			}
			r.Metadata = append(append(append(make(json.RawMessage, 0, len(prefix)+len(r.Metadata)+1), prefix...), r.Metadata...), '}')
			return inner(r)
		}
	}
	q, args := selectRecordsFrom(table, &f)
	return conn.Raw(func(dc any) error {
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := dc.(driver.QueryerContext).QueryContext(ctx, q, named)
		if err != nil {
			return fmt.Errorf("query records: %w", err)
		}
		defer rows.Close()

		chunks := make(chan []vibekit.Record, 2)
		free := make(chan []vibekit.Record, 4)
		stop := make(chan struct{})
		readErr := make(chan error, 1)
		go func() {
			defer close(chunks)
			dest := make([]driver.Value, 11)
			for {
				var chunk []vibekit.Record
				select {
				case chunk = <-free:
				default:
					chunk = make([]vibekit.Record, 0, scanChunk)
				}
				for len(chunk) < scanChunk {
					err := rows.Next(dest)
					if err == io.EOF {
						break
					}
					if err != nil {
						readErr <- fmt.Errorf("read records: %w", err)
						return
					}
					chunk = append(chunk, recordFrom(dest))
				}
				if len(chunk) == 0 {
					readErr <- nil
					return
				}
				select {
				case chunks <- chunk:
				case <-stop:
					readErr <- nil
					return
				}
				if len(chunk) < scanChunk {
					readErr <- nil
					return
				}
			}
		}()
		var fnErr error
		for chunk := range chunks {
			for i := range chunk {
				if fnErr = fn(&chunk[i]); fnErr != nil {
					break
				}
			}
			if fnErr != nil {
				close(stop)
				for range chunks { // let the reader finish before rows close
				}
				break
			}
			clear(chunk)
			select {
			case free <- chunk[:0]:
			default:
			}
		}
		if err := <-readErr; fnErr == nil {
			return err
		}
		return fnErr
	})
}

// recordFrom converts a row of recordColumns as the driver returns it.
func recordFrom(v []driver.Value) vibekit.Record {
	str := func(x driver.Value) string {
		switch x := x.(type) {
		case string:
			return x
		case []byte:
			return string(x)
		case int64:
			return strconv.FormatInt(x, 10)
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return ""
	}
	num := func(x driver.Value) int64 {
		switch x := x.(type) {
		case int64:
			return x
		case float64:
			return int64(x)
		case string:
			n, _ := strconv.ParseInt(x, 10, 64)
			return n
		}
		return 0
	}
	r := vibekit.Record{
		ID: num(v[0]), SessionID: str(v[1]), EventType: vibekit.EventType(str(v[2])), AgentType: str(v[3]),
		Mode: str(v[4]), Prompt: str(v[5]), StreamData: str(v[6]), SandboxID: str(v[7]), RepoURL: str(v[8]),
		Timestamp: num(v[10]),
	}
	if m := str(v[9]); m != "" {
		r.Metadata = json.RawMessage(m)
	}
	return r
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
