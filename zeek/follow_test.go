package zeek

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// followRun runs a Follower on dir in the background; stop ends it and
// returns the error Run returned.
type followRun struct {
	mu    sync.Mutex
	conns []*cw.Conn
	done  chan error
	stop  context.CancelFunc
	fl    *Follower
}

func startFollow(t *testing.T, dir, state string) *followRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fr := &followRun{done: make(chan error, 1), stop: cancel}
	fr.fl = NewFollower(dir, FollowConfig{StatePath: state, Poll: 10 * time.Millisecond, Logger: quiet})
	go func() {
		fr.done <- fr.fl.Run(ctx, func(c *cw.Conn) {
			fr.mu.Lock()
			fr.conns = append(fr.conns, c)
			fr.mu.Unlock()
		})
	}()
	return fr
}

// waitUIDs waits until the follower emitted want (in this order) and
// nothing else.
func (fr *followRun) waitUIDs(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fr.mu.Lock()
		var got []string
		for _, c := range fr.conns {
			got = append(got, c.UID)
		}
		fr.mu.Unlock()
		if strings.Join(got, " ") == strings.Join(want, " ") {
			// A little longer, to see no duplicate arrives.
			time.Sleep(50 * time.Millisecond)
			fr.mu.Lock()
			n := len(fr.conns)
			fr.mu.Unlock()
			if n != len(want) {
				t.Fatalf("after %v: %d Conns, want %d", want, n, len(want))
			}
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("got %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (fr *followRun) finish(t *testing.T) {
	t.Helper()
	fr.stop()
	select {
	case err := <-fr.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// gzipAway does what Zeek's archiver does after a rename: compress the
// archive and delete the plain file.
func gzipAway(t *testing.T, plain, gz string) {
	t.Helper()
	b, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(gz), 0o755)
	if err := os.WriteFile(gz, gzipBytes(t, string(b)), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(plain)
}

const dnsHead = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\tquery\tqclass\tqtype\trcode\tanswers\tTTLs\n"

func dnsLine(uid, q string) string {
	return "1795935600.1\t" + uid + "\t10.0.0.1\t40000\t198.51.100.7\t53\tudp\t7\t" + q + "\t1\t1\t0\t192.0.2.1\t60.000000\n"
}

func TestFollowRotations(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state.json")
	conn := filepath.Join(dir, "conn.log")
	writeFile(t, filepath.Join(dir, "dns.log"), dnsHead+dnsLine("C1", "one.example"))
	writeFile(t, conn, tsvHead+connLine(1795935600, "C1")+connLine(1795935601, "C2"))

	fr := startFollow(t, dir, state)
	fr.waitUIDs(t, "C1", "C2")
	if d := fr.conns[0].DNS; len(d) != 1 || d[0].Query != "one.example" {
		t.Errorf("C1's DNS %+v: want one.example from dns.log", d)
	}

	// A line written in two pieces is read once it is whole.
	l3 := connLine(1795935602, "C3")
	appendFile(t, conn, l3[:20])
	time.Sleep(40 * time.Millisecond)
	appendFile(t, conn, l3[20:])
	fr.waitUIDs(t, "C1", "C2", "C3")

	// Rotation by rename: the last lines of the old file and the first of
	// the new are both read, once.
	appendFile(t, conn, connLine(1795935603, "C4"))
	os.Rename(conn, filepath.Join(dir, "conn.2026-11-29-07-00-00.log"))
	writeFile(t, conn, tsvHead+connLine(1795935604, "C5"))
	fr.waitUIDs(t, "C1", "C2", "C3", "C4", "C5")

	// Rotation into a dated directory, compressed and the plain file
	// deleted: the old file is finished through the open descriptor.
	appendFile(t, conn, connLine(1795935605, "C6"))
	os.Rename(conn, filepath.Join(dir, "conn.tmp"))
	gzipAway(t, filepath.Join(dir, "conn.tmp"), filepath.Join(dir, "2026-11-29", "conn.08:00:00-09:00:00.log.gz"))
	appendFile(t, filepath.Join(dir, "dns.log"), dnsLine("C7", "seven.example"))
	writeFile(t, conn, tsvHead+connLine(1795935606, "C7"))
	fr.waitUIDs(t, "C1", "C2", "C3", "C4", "C5", "C6", "C7")
	if d := fr.conns[6].DNS; len(d) != 1 || d[0].Query != "seven.example" {
		t.Errorf("C7's DNS %+v", d)
	}
	fr.finish(t)

	var st followState
	b, err := os.ReadFile(state)
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("state: %v %s", err, b)
	}
	if cs := st.Logs["conn"]; cs.Offset != int64(len(tsvHead+connLine(1795935606, "C7"))) || cs.Ino == 0 || cs.HeadLen == 0 {
		t.Errorf("conn state %+v", cs)
	}

	// While stopped: more lines, then two rotations (one compressed).
	appendFile(t, conn, connLine(1795935607, "C8"))
	os.Rename(conn, filepath.Join(dir, "conn.tmp"))
	gzipAway(t, filepath.Join(dir, "conn.tmp"), filepath.Join(dir, "conn.2026-11-29-09-00-00.log.gz"))
	writeFile(t, conn, tsvHead+connLine(1795935608, "C9"))
	os.Rename(conn, filepath.Join(dir, "conn.2026-11-29-10-00-00.log"))
	writeFile(t, conn, tsvHead+connLine(1795935609, "C10"))

	// The restart reads exactly what it had not: the rest of the file it
	// was in (now compressed), the archive after it, the live file.
	fr = startFollow(t, dir, state)
	fr.waitUIDs(t, "C8", "C9", "C10")
	appendFile(t, conn, connLine(1795935610, "C11"))
	fr.waitUIDs(t, "C8", "C9", "C10", "C11")
	fr.finish(t)

	// A restart with nothing new emits nothing.
	fr = startFollow(t, dir, state)
	time.Sleep(60 * time.Millisecond)
	fr.waitUIDs(t)
	fr.finish(t)
}

// A resumed TSV log needs its header: the fields come from the top of the
// file even though reading starts in the middle.
func TestFollowResumeJSONAndTruncate(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state.json")
	conn := filepath.Join(dir, "conn.log")
	j := func(uid string) string {
		return `{"ts":1795935600.5,"uid":"` + uid + `","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"tcp"}` + "\n"
	}
	writeFile(t, conn, j("J1"))
	fr := startFollow(t, dir, state)
	fr.waitUIDs(t, "J1")
	fr.finish(t)
	appendFile(t, conn, j("J2"))
	fr = startFollow(t, dir, state)
	fr.waitUIDs(t, "J2")
	// copytruncate-style rotation: the same inode starts over.
	os.Truncate(conn, 0)
	appendFile(t, conn, j("J3"))
	fr.waitUIDs(t, "J2", "J3")
	fr.finish(t)
}

func TestFollowBadState(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(state, []byte("{not json"), 0o644)
	writeFile(t, filepath.Join(dir, "conn.log"), tsvHead+connLine(1795935600, "C1"))
	fr := startFollow(t, dir, state)
	fr.waitUIDs(t, "C1")
	fr.stop()
	err := <-fr.done
	if !cw.IsInputError(err) || !strings.Contains(err.Error(), state) {
		t.Errorf("err %v: want an InputError naming the state file", err)
	}
	if err := NewFollower(filepath.Join(dir, "nope"), FollowConfig{Logger: quiet}).Run(context.Background(), func(*cw.Conn) {}); !cw.IsInputError(err) {
		t.Errorf("missing dir: %v", err)
	}
}
