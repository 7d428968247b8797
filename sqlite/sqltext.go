package sqlite

import "strings"

// statementCount counts the statements in q as SQLite's tokenizer splits
// them: at semicolons outside string literals, quoted identifiers and
// comments, treating the body of CREATE TRIGGER ... BEGIN ... END as part of
// its statement (it ends at "; END ;", as in sqlite3_complete). Empty
// statements (";;") count for nothing.
func statementCount(q string) int {
	var (
		n        int
		tokens   int      // tokens of the current statement
		lead     []string // its first three tokens, upper-cased words or ""
		trigger  bool     // it is CREATE [TEMP] TRIGGER
		trigSemi int      // in a trigger: 1 after ';', 2 after '; END'
	)
	end := func() {
		if tokens > 0 {
			n++
		}
		tokens, lead, trigger, trigSemi = 0, lead[:0], false, 0
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case strings.HasPrefix(q[i:], "--"):
			if j := strings.IndexByte(q[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(q)
			}
			continue
		case strings.HasPrefix(q[i:], "/*"):
			if j := strings.Index(q[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(q)
			}
			continue
		case c == ';':
			i++
			if trigger && trigSemi != 2 {
				trigSemi = 1
				continue
			}
			end()
			continue
		}
		word := ""
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(q, i)
		case c == '[':
			if j := strings.IndexByte(q[i:], ']'); j >= 0 {
				i += j + 1
			} else {
				i = len(q)
			}
		case isIdentChar(c):
			j := i
			for j < len(q) && isIdentChar(q[j]) {
				j++
			}
			word = strings.ToUpper(q[i:j])
			i = j
		default:
			i++
		}
		tokens++
		if len(lead) < 3 {
			lead = append(lead, word)
			trigger = isCreateTrigger(lead)
		}
		if trigger {
			if trigSemi == 1 && word == "END" {
				trigSemi = 2
			} else {
				trigSemi = 0
			}
		}
	}
	end()
	return n
}

func isCreateTrigger(lead []string) bool {
	if len(lead) < 2 || lead[0] != "CREATE" {
		return false
	}
	if lead[1] == "TRIGGER" {
		return true
	}
	return len(lead) == 3 && (lead[1] == "TEMP" || lead[1] == "TEMPORARY") && lead[2] == "TRIGGER"
}

// skipQuoted returns the index after the quoted token at q[i], where a
// doubled quote stands for itself; an unterminated one runs to the end.
func skipQuoted(q string, i int) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		if q[j] != quote {
			continue
		}
		if j+1 < len(q) && q[j+1] == quote {
			j++
			continue
		}
		return j + 1
	}
	return len(q)
}

// isIdentChar reports whether c may be part of a keyword, identifier or
// number; SQLite takes every byte of a multi-byte UTF-8 rune as one.
func isIdentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
