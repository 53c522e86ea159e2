package main

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// tracesFixture is go tool pprof -traces output of the shape a WhatsApp
// gateway's profile gives: a sample in SQLite under the WhatsApp store
// (network), one in Signal encryption under the bridge's send (network:
// the leaf-most known frame), one in the bridge called back from
// whatsmeow's event handler (bridge), one of the garbage collector
// (other) and one cut short in cgo (other).
const tracesFixture = `File: passerelle
Type: cpu
Duration: 40s, Total samples = 2.62s ( 6.55%)
-----------+-------------------------------------------------------
      70ms   runtime.cgocall
             github.com/mattn/go-sqlite3._Cfunc__sqlite3_step_columns
             database/sql.(*DB).QueryRowContext
             go.mau.fi/util/dbutil.(*Database).QueryRow
             github.com/passerelle/passerelle/bridges/whatsapp/wastore.(*deviceStore).GetPrivacyToken
             go.mau.fi/whatsmeow.(*Client).sendDM
             github.com/passerelle/passerelle/bridges/whatsapp.(*Client).sendMessage
             maunium.net/go/mautrix/bridgev2.(*Portal).handleMatrixMessage
-----------+-------------------------------------------------------
      1.20s   crypto/aes.encryptBlock
             go.mau.fi/libsignal/cipher.EncryptCbc (inline)
             go.mau.fi/whatsmeow.(*Client).encryptMessageForDevice
             github.com/passerelle/passerelle/bridges/whatsapp.(*Client).HandleMatrixMessage
-----------+-------------------------------------------------------
      30ms   encoding/json.Marshal
             maunium.net/go/mautrix/bridgev2.(*Portal).sendConvertedMessage
             github.com/passerelle/passerelle/bridges/whatsapp.(*Client).handleWAEvent
             go.mau.fi/whatsmeow.(*Client).dispatchEvent
-----------+-------------------------------------------------------
      20ms   runtime.scanobject
             runtime.gcDrain
             runtime.gcBgMarkWorker
-----------+-------------------------------------------------------
      10ms   runtime.cgocall
             github.com/mattn/go-sqlite3._Cfunc__sqlite3_reset_clear
-----------+-------------------------------------------------------
`

// TestParseTraces: each sample goes to its leaf-most known frame's part.
func TestParseTraces(t *testing.T) {
	p, err := parseTraces(strings.NewReader(tracesFixture))
	if err != nil {
		t.Fatal(err)
	}
	want := cpuParts{Network: 1270 * time.Millisecond, Bridge: 30 * time.Millisecond, Other: 30 * time.Millisecond}
	if p != want {
		t.Fatalf("parts %+v, want %+v", p, want)
	}
	if s := p.networkShare(); s < 0.976 || s > 0.977 {
		t.Errorf("network share %.4f, want 1270/1300", s)
	}
	var out strings.Builder
	printParts(&out, p, 3.0)
	for _, w := range []string{"network library and its store", "95.5%", "network library 2.93, the rest 0.07"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("printed %q, without %q", out.String(), w)
		}
	}
	if _, err = parseTraces(strings.NewReader("File: passerelle\n")); err == nil {
		t.Error("a profile without samples parsed")
	}
}

// spin burns CPU in this package (the bridge's part, by its import path).
//
//go:noinline
func spin(until time.Time) int {
	n := 0
	for time.Now().Before(until) {
		for i := range 10000 {
			n += i * i
		}
	}
	return n
}

// TestProfileParts reads a real CPU profile through go tool pprof: the
// samples of a loop in this package are the bridge's.
func TestProfileParts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err = pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	spin(time.Now().Add(500 * time.Millisecond))
	pprof.StopCPUProfile()
	if err = f.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := profileParts(file)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bridge < p.total()/2 || p.Network != 0 {
		t.Errorf("parts of a loop in the bench's package: %+v, want most in the bridge and none in a network library", p)
	}
}
