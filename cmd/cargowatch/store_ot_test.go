package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cargowatch/cargowatch/internal/corpus"
)

// What the OT parser read from a capture survives the store: flows read
// back from --db print the same "ot" as flows straight from the capture.
func TestStoredFlowsKeepOT(t *testing.T) {
	in := corpus.Path(t, "pcap", "ics", "ndpi-modbus.pcap")
	db := filepath.Join(t.TempDir(), "cw.db")
	if code, _, errOut := runCmd(t, "analyze", "--db", db, in); code != exitOK {
		t.Fatalf("analyze: exit %d: %s", code, errOut)
	}
	code, stored, errOut := runCmd(t, "flows", "--db", db, "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("flows --db: exit %d: %s", code, errOut)
	}
	_, direct, _ := runCmd(t, "flows", "--no-db", "--format", "jsonl", in)

	ots := func(out string) map[string]any {
		t.Helper()
		m := map[string]any{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct {
				UID string         `json:"uid"`
				OT  map[string]any `json:"ot"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("not JSON: %q: %v", line, err)
			}
			if r.OT != nil {
				m[r.UID] = r.OT
			}
		}
		return m
	}
	got, want := ots(stored), ots(direct)
	var modbus int
	for _, o := range got {
		if o.(map[string]any)["protocol"] == "modbus" {
			modbus++
		}
	}
	if modbus == 0 {
		t.Fatalf("no stored conn prints ot with protocol modbus:\n%s", stored)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored ot differs from the capture's:\n got %v\nwant %v", got, want)
	}
}
