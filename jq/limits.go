package jq

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/itchyny/gojq"
)

// Limits on the values a user's program may build. A watchdog (see
// Program.MemoryLimit) stops programs that grow memory step by step; these
// stop the single steps that would take a lot at once ("x" * 1e9, .[1e8] =
// 1, squaring a huge number) or build a value so deep that encoding or
// comparing it would overflow the stack. They are checked before the step.
const (
	MaxString = 8 << 20 // bytes of a string made by + or *
	MaxArray  = 1 << 20 // elements of an array made by +, and the largest array index
	MaxObject = 1 << 20 // keys of an object made by +
	MaxBits   = 1 << 20 // bits of an integer made by *
	MaxDepth  = 10000   // nesting of a value built by [], {} or an assignment, as encoding/json allows
)

// ErrTooBig is a value over one of the limits.
var ErrTooBig = errors.New("value over the limit")

// limitFuncs are the checks the rewritten program calls.
var limitFuncs = []gojq.CompilerOption{
	gojq.WithFunction("_vk_add2", 2, 2, func(_ any, a []any) any { return checkAdd(a[0], a[1]) }),
	gojq.WithFunction("_vk_mul2", 2, 2, func(_ any, a []any) any { return checkMul(a[0], a[1]) }),
	gojq.WithFunction("_vk_index", 0, 0, func(v any, _ []any) any { return checkIndex(v) }),
	gojq.WithFunction("_vk_path", 0, 0, func(v any, _ []any) any { return checkPath(v) }),
	gojq.WithFunction("_vk_depth", 0, 0, func(v any, _ []any) any { return checkDepth(v) }),
	gojq.WithFunction("_vk_size", 0, 1, func(v any, a []any) any { return checkSize(v, a) }),
}

// sizedFuncs are the built-ins (with no arguments) that make one string or
// array of all their input at once: its size (strings counted at each place
// they are referred from) is checked first. A value can refer to one big
// string a million times in little memory; joined, it would not fit.
var sizedFuncs = map[string]bool{"add": true, "tojson": true, "tostring": true, "implode": true, "ascii_downcase": true, "ascii_upcase": true}

// guard rewrites a user's program so that the steps that can make a big
// value at once check their operands first: a + b and a * b (and +=, *=),
// array indexes, setpath's path, and the depth of arrays, objects and
// assignments' results. Operators keep their order of evaluation and their
// results: only the check is added.
func guard(q *gojq.Query) error {
	if q == nil {
		return nil
	}
	for _, fd := range q.FuncDefs {
		if err := guard(fd.Body); err != nil {
			return err
		}
	}
	if err := guardTerm(q.Term); err != nil {
		return err
	}
	if err := guard(q.Left); err != nil {
		return err
	}
	if err := guard(q.Right); err != nil {
		return err
	}
	for _, p := range q.Patterns {
		guardPattern(p)
	}
	switch q.Op {
	case gojq.OpAdd, gojq.OpMul:
		return checked(q, q.Op, q.Left, q.Right)
	case gojq.OpUpdateAdd, gojq.OpUpdateMul:
		// l += r is r as $x | l |= . + $x, which is how it runs anyway.
		op := gojq.OpAdd
		if q.Op == gojq.OpUpdateMul {
			op = gojq.OpMul
		}
		t, err := gojq.Parse(`__vk_r as $__vk_u | __vk_l |= (. + $__vk_u)`)
		if err != nil {
			return err
		}
		upd := t.Right
		upd.Left = q.Left
		sum := upd.Right.Term.Query
		if err := checked(sum, op, sum.Left, sum.Right); err != nil {
			return err
		}
		t.Left = q.Right
		*q = gojq.Query{Left: t, Op: gojq.OpPipe, Right: depthCheck()}
	case gojq.OpAssign, gojq.OpModify, gojq.OpUpdateSub, gojq.OpUpdateDiv, gojq.OpUpdateMod, gojq.OpUpdateAlt:
		inner := *q
		*q = gojq.Query{Left: &inner, Op: gojq.OpPipe, Right: depthCheck()}
	}
	return nil
}

// checked replaces q with `_vk_X2(l; r) as [$l, $r] | $l op $r`.
func checked(q *gojq.Query, op gojq.Operator, l, r *gojq.Query) error {
	name, sym := "_vk_add2", "+"
	if op == gojq.OpMul {
		name, sym = "_vk_mul2", "*"
	}
	t, err := gojq.Parse(name + `(__vk_a; __vk_b) as [$__vk_l, $__vk_r] | $__vk_l ` + sym + ` $__vk_r`)
	if err != nil {
		return err
	}
	t.Left.Term.Func.Args = []*gojq.Query{l, r}
	*q = *t
	return nil
}

func sizeCheck(arg *gojq.Query) *gojq.Query {
	f := &gojq.Func{Name: "_vk_size"}
	if arg != nil {
		f.Args = []*gojq.Query{arg}
	}
	return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: f}}
}

func depthCheck() *gojq.Query {
	return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: "_vk_depth"}}}
}

func guardTerm(t *gojq.Term) error {
	if t == nil {
		return nil
	}
	var err error
	try := func(q *gojq.Query) {
		if err == nil {
			err = guard(q)
		}
	}
	guardIndex(t.Index, try)
	if f := t.Func; f != nil {
		for _, a := range f.Args {
			try(a)
		}
	}
	if o := t.Object; o != nil {
		for _, kv := range o.KeyVals {
			if kv.KeyString != nil {
				for _, q := range kv.KeyString.Queries {
					try(q)
				}
			}
			try(kv.KeyQuery)
			try(kv.Val)
		}
	}
	if a := t.Array; a != nil {
		try(a.Query)
	}
	if u := t.Unary; u != nil && err == nil {
		err = guardTerm(u.Term)
	}
	if s := t.Str; s != nil {
		for i, q := range s.Queries {
			try(q)
			if q.Term != nil && q.Term.Str != nil {
				continue // a literal part
			}
			// "\(x)" writes x out whole. gojq wants a term here.
			s.Queries[i] = &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeQuery,
				Query: &gojq.Query{Left: q, Op: gojq.OpPipe, Right: sizeCheck(nil)}}}
		}
	}
	if i := t.If; i != nil {
		try(i.Cond)
		try(i.Then)
		for _, e := range i.Elif {
			try(e.Cond)
			try(e.Then)
		}
		try(i.Else)
	}
	if x := t.Try; x != nil {
		try(x.Body)
		try(x.Catch)
	}
	if r := t.Reduce; r != nil {
		try(r.Query)
		try(r.Start)
		try(r.Update)
		for _, p := range r.Patterns {
			guardPattern(p)
		}
	}
	if f := t.Foreach; f != nil {
		try(f.Query)
		try(f.Start)
		try(f.Update)
		try(f.Extract)
		for _, p := range f.Patterns {
			guardPattern(p)
		}
	}
	if l := t.Label; l != nil {
		try(l.Body)
	}
	try(t.Query)
	for _, s := range t.SuffixList {
		guardIndex(s.Index, try)
	}
	if err != nil {
		return err
	}
	if f := t.Func; f != nil {
		switch {
		case (f.Name == "_add" || f.Name == "_multiply") && len(f.Args) == 2:
			op := gojq.OpAdd
			if f.Name == "_multiply" {
				op = gojq.OpMul
			}
			q := &gojq.Query{}
			if err == nil {
				err = checked(q, op, f.Args[0], f.Args[1])
			}
			*t = gojq.Term{Type: gojq.TermTypeQuery, Query: q, SuffixList: t.SuffixList}
		case len(f.Args) == 0 && sizedFuncs[f.Name]:
			call := *t
			call.SuffixList = nil
			*t = gojq.Term{Type: gojq.TermTypeQuery, SuffixList: t.SuffixList,
				Query: &gojq.Query{Left: sizeCheck(nil), Op: gojq.OpPipe, Right: &gojq.Query{Term: &call}}}
		case f.Name == "add" && len(f.Args) == 1:
			// add(f) is [f] | add.
			arr := &gojq.Term{Type: gojq.TermTypeArray, Array: &gojq.Array{Query: f.Args[0]}}
			add := &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: "add"}}
			*t = gojq.Term{Type: gojq.TermTypeQuery, SuffixList: t.SuffixList, Query: &gojq.Query{
				Left: &gojq.Query{Term: arr}, Op: gojq.OpPipe,
				Right: &gojq.Query{Left: sizeCheck(nil), Op: gojq.OpPipe, Right: &gojq.Query{Term: add}}}}
		case f.Name == "join" && len(f.Args) == 1:
			q, perr := gojq.Parse(`__vk_sep as $__vk_j | _vk_size($__vk_j) | join($__vk_j)`)
			if perr != nil {
				return perr
			}
			q.Left = f.Args[0]
			*t = gojq.Term{Type: gojq.TermTypeQuery, SuffixList: t.SuffixList, Query: q}
		case f.Name == "setpath" && len(f.Args) == 2:
			f.Args[0] = &gojq.Query{Left: f.Args[0], Op: gojq.OpPipe, Right: &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: "_vk_path"}}}}
			call := *t
			call.SuffixList = nil
			*t = gojq.Term{Type: gojq.TermTypeQuery, SuffixList: t.SuffixList,
				Query: &gojq.Query{Left: &gojq.Query{Term: &call}, Op: gojq.OpPipe, Right: depthCheck()}}
		}
	}
	if err != nil {
		return err
	}
	if t.Type == gojq.TermTypeFormat {
		// @base64, @json, ... make one string of their input, or of each
		// value interpolated into "...".
		if t.Str == nil { // "@json \"...\"" is checked as a string above
			format := *t
			format.SuffixList = nil
			*t = gojq.Term{Type: gojq.TermTypeQuery, SuffixList: t.SuffixList,
				Query: &gojq.Query{Left: sizeCheck(nil), Op: gojq.OpPipe, Right: &gojq.Query{Term: &format}}}
		}
		return nil
	}
	if t.Array != nil || t.Object != nil {
		// [..] and {..}: the new value's depth, in parentheses that keep
		// the term's suffixes.
		built := *t
		built.SuffixList = nil
		*t = gojq.Term{Type: gojq.TermTypeQuery, SuffixList: t.SuffixList,
			Query: &gojq.Query{Left: &gojq.Query{Term: &built}, Op: gojq.OpPipe, Right: depthCheck()}}
	}
	return nil
}

// guardIndex checks the index of .[i] before it is used: assigning to a
// huge index makes an array that long.
func guardIndex(ix *gojq.Index, try func(*gojq.Query)) {
	if ix == nil {
		return
	}
	if ix.Str != nil {
		for _, q := range ix.Str.Queries {
			try(q)
		}
	}
	try(ix.Start)
	try(ix.End)
	if ix.Start != nil && !ix.IsSlice && !smallConstant(ix.Start) {
		ix.Start = &gojq.Query{Left: ix.Start, Op: gojq.OpPipe, Right: &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: "_vk_index"}}}}
	}
}

// smallConstant reports whether q is a number literal no index check is
// needed for: gojq then compiles constant paths the fast way.
func smallConstant(q *gojq.Query) bool {
	t := q.Term
	if q.Left != nil || q.Right != nil || t == nil || t.Type != gojq.TermTypeNumber || len(t.SuffixList) > 0 {
		return false
	}
	f, err := strconv.ParseFloat(t.Number, 64)
	return err == nil && f <= MaxArray
}

func guardPattern(p *gojq.Pattern) {
	if p == nil {
		return
	}
	for _, a := range p.Array {
		guardPattern(a)
	}
	for _, o := range p.Object {
		if o.KeyQuery != nil {
			guard(o.KeyQuery)
		}
		guardPattern(o.Val)
	}
}

func tooBig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTooBig}, args...)...)
}

// checkAdd checks l + r and gives both back for the operator.
func checkAdd(l, r any) any {
	switch l := l.(type) {
	case string:
		if r, ok := r.(string); ok && len(l)+len(r) > MaxString {
			return tooBig("a string of %d bytes (+) is over %d", len(l)+len(r), MaxString)
		}
	case []any:
		if r, ok := r.([]any); ok && len(l)+len(r) > MaxArray {
			return tooBig("an array of %d elements (+) is over %d", len(l)+len(r), MaxArray)
		}
	case map[string]any:
		if r, ok := r.(map[string]any); ok && len(l)+len(r) > MaxObject {
			return tooBig("an object of %d keys (+) is over %d", len(l)+len(r), MaxObject)
		}
	}
	return []any{l, r}
}

// checkMul checks l * r: a string repeated, or an integer product.
func checkMul(l, r any) any {
	s, n := l, r
	if _, ok := s.(string); !ok {
		s, n = r, l
	}
	if s, ok := s.(string); ok {
		var f float64
		switch n := n.(type) {
		case int:
			f = float64(n)
		case float64:
			f = n
		case *big.Int:
			f, _ = new(big.Float).SetInt(n).Float64()
		}
		if f > 0 && float64(len(s))*f > MaxString {
			return tooBig("a string of %.0f bytes (*) is over %d", float64(len(s))*f, MaxString)
		}
	}
	if bits := intBits(l) + intBits(r); bits > MaxBits {
		return tooBig("an integer of %d bits (*) is over %d", bits, MaxBits)
	}
	return []any{l, r}
}

func intBits(v any) int {
	switch v := v.(type) {
	case int:
		return 64
	case *big.Int:
		return v.BitLen()
	}
	return 0
}

// checkIndex checks an array index: setting one makes the array that long.
func checkIndex(v any) any {
	switch n := v.(type) {
	case int:
		if n > MaxArray {
			return tooBig("array index %d is over %d", n, MaxArray)
		}
	case float64:
		if n > MaxArray {
			return tooBig("array index %.0f is over %d", n, MaxArray)
		}
	case *big.Int:
		return tooBig("array index %v is over %d", n, MaxArray)
	}
	return v
}

// checkPath checks setpath's path: its indexes, and its length (the depth
// of what it builds).
func checkPath(v any) any {
	p, ok := v.([]any)
	if !ok {
		return v
	}
	if len(p) > MaxDepth {
		return tooBig("a path of %d keys is over %d", len(p), MaxDepth)
	}
	for _, k := range p {
		if err, ok := checkIndex(k).(error); ok {
			return err
		}
	}
	return v
}

// checkDepth checks how deep a value nests.
func checkDepth(v any) any {
	if depthOver(v, MaxDepth) {
		return tooBig("a value nested over %d deep", MaxDepth)
	}
	return v
}

// depthOver reports whether v nests deeper than left levels.
func depthOver(v any, left int) bool {
	switch v := v.(type) {
	case []any:
		if left == 0 {
			return true
		}
		for _, e := range v {
			if depthOver(e, left-1) {
				return true
			}
		}
	case map[string]any:
		if left == 0 {
			return true
		}
		for _, e := range v {
			if depthOver(e, left-1) {
				return true
			}
		}
	}
	return false
}

// checkSize checks the size of what one built-in would make of v, joined
// with the separator a[0] if given.
func checkSize(v any, a []any) any {
	sep := 0
	if len(a) == 1 {
		if s, ok := a[0].(string); ok {
			sep = len(s)
		}
	}
	if n := size(v, sep, MaxString+1); n > MaxString {
		return tooBig("the value is over %d bytes once written out", MaxString)
	}
	return v
}

// size is about how many bytes v takes written out, each element followed
// by sep bytes; it stops counting past limit.
func size(v any, sep, limit int) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []any:
		n := 2
		for _, e := range v {
			if n += size(e, 0, limit-n) + 1 + sep; n > limit {
				return n
			}
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range v {
			if n += len(k) + 4 + size(e, 0, limit-n) + sep; n > limit {
				return n
			}
		}
		return n
	case *big.Int:
		return v.BitLen()/3 + 1
	}
	return 8
}
