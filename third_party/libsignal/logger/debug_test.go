package logger

import "testing"

// formatCounter counts how often it is formatted.
type formatCounter struct{ n *int }

func (f formatCounter) String() string { *f.n++; return "formatted" }

type recorder struct {
	defaultLogger
	debug []string
}

func (r *recorder) Debug(caller, msg string) { r.debug = append(r.debug, msg) }

// TestDebugFormatsOnlyForALoggerThatWritesIt: with no logger or the
// default one, Debug formats nothing (the default logger drops debug lines
// and some carry key material); a logger set up with Setup gets every line.
func TestDebugFormatsOnlyForALoggerThatWritesIt(t *testing.T) {
	saved := Logger
	defer func() { Logger = saved }()
	var n int
	arg := formatCounter{&n}

	Logger = nil
	Debug("session: ", arg)
	Logger = &defaultLogger{}
	Debug("session: ", arg)
	if n != 0 {
		t.Errorf("with no logger and the default one, the argument was formatted %d times, want 0", n)
	}

	var l Loggable = &recorder{}
	Setup(&l)
	Debug("session: ", arg)
	if r := l.(*recorder); n != 1 || len(r.debug) != 1 || r.debug[0] != "session: formatted" {
		t.Errorf("with a logger set up: formatted %d times, lines %q; want once, [\"session: formatted\"]", n, r.debug)
	}
}
