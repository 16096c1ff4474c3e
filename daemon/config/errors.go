package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is one problem found in a configuration file. Its message reads
// FILE:LINE:COL: message, with 1-based line and column, the form editors
// and terminals recognise as a jump target.
type Error struct {
	// File is the file name as given to Load or Parse.
	File string
	// Pos is where the problem is (Line and Column are 1-based).
	Pos hcl.Pos
	// Msg says what is wrong and, where it helps, what to do. It never
	// contains a sensitive value.
	Msg string
}

// Error implements error.
func (e *Error) Error() string {
	line, col := e.Pos.Line, e.Pos.Column
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, line, col, e.Msg)
}

// Errors is every problem found in one file, in file order. errors.As
// finds the first *Error in it.
type Errors []*Error

// Error implements error: one positioned line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// problems collects positioned errors for one file.
type problems struct {
	file string
	errs Errors
}

// at records a problem at pos.
func (p *problems) at(pos hcl.Pos, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// where formats pos the way error messages do, for "first declared at".
func (p *problems) where(pos hcl.Pos) string {
	return fmt.Sprintf("%s:%d:%d", p.file, pos.Line, pos.Column)
}

// diags records hcl's error diagnostics in this package's format. When
// secret names a sensitive key, only the summary is kept, so no detail can
// quote its value.
func (p *problems) diags(ds hcl.Diagnostics, secret string) {
	for _, d := range ds {
		if d.Severity != hcl.DiagError {
			continue
		}
		var pos hcl.Pos
		if d.Subject != nil {
			pos = d.Subject.Start
		}
		msg := strings.TrimSuffix(d.Summary, ".")
		switch {
		case secret != "":
			msg += fmt.Sprintf(" in %s (details withheld: the value is sensitive)", secret)
		case d.Detail != "":
			msg += ": " + d.Detail
		}
		p.at(pos, "%s", msg)
	}
}

// err returns the problems sorted by position, or nil when there are none.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i].Pos, p.errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return p.errs
}
