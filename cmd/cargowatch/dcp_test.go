package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dcpCapture writes a pcap of a PROFINET DCP Identify All (multicast),
// one device's answer with its name and address, a Set of a device's
// name and a Hello, framed as IEC 61158-6-10 lays them out.
func dcpCapture(t *testing.T, dir string) string {
	t.Helper()
	blk := func(opt, sub byte, v ...byte) []byte {
		b := append([]byte{opt, sub, byte(len(v) >> 8), byte(len(v))}, v...)
		if len(v)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	pdu := func(frameID uint16, svc, typ byte, xid uint32, blocks ...[]byte) []byte {
		data := bytes.Join(blocks, nil)
		b := binary.BigEndian.AppendUint16(nil, frameID)
		b = append(b, svc, typ)
		b = binary.BigEndian.AppendUint32(b, xid)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
		return append(b, data...)
	}
	eth := func(dst, src []byte, payload []byte) []byte {
		b := append(append(append([]byte{}, dst...), src...), 0x88, 0x92)
		b = append(b, payload...)
		for len(b) < 60 {
			b = append(b, 0)
		}
		return b
	}
	ctrl := []byte{2, 0, 0, 0, 0, 0x0c}
	plc := []byte{0x00, 0x1b, 0x1b, 0x0a, 0x0b, 0x0c}
	ip := []byte{192, 168, 0, 10, 255, 255, 255, 0, 192, 168, 0, 1}
	frames := [][]byte{
		eth([]byte{1, 0x0e, 0xcf, 0, 0, 0}, ctrl, pdu(0xfefe, 5, 0, 1, blk(0xff, 0xff))),
		eth(ctrl, plc, pdu(0xfeff, 5, 1, 1,
			blk(2, 2, append([]byte{0, 0}, "crane-plc-3"...)...),
			blk(2, 3, 0, 0, 0x00, 0x2a, 0x01, 0x0e),
			blk(1, 2, append([]byte{0, 1}, ip...)...))),
		eth(plc, ctrl, pdu(0xfefd, 4, 0, 2, blk(2, 2, append([]byte{0, 1}, "evil"...)...), blk(5, 5, 0, 0))),
		eth([]byte{1, 0x0e, 0xcf, 0, 0, 1}, plc, pdu(0xfefc, 6, 0, 3,
			blk(2, 2, append([]byte{0, 0}, "crane-plc-3"...)...),
			blk(1, 2, append([]byte{0, 1}, ip...)...))),
	}
	var b bytes.Buffer
	for _, v := range []uint32{0xa1b2c3d4, 2 | 4<<16, 0, 0, 65535, 1} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	for i, f := range frames {
		for _, v := range []uint32{1_714_564_800 + uint32(i), 0, uint32(len(f)), uint32(len(f))} {
			binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write(f)
	}
	p := filepath.Join(dir, "dcp.pcap")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		rs = append(rs, m)
	}
	return rs
}

// TestDCPThroughCommands runs PROFINET DCP Conns, which have MACs but at
// most one IP address, through every consumer: flows (JSON lines and
// table), analyze with a store, flows from the store and assets.
func TestDCPThroughCommands(t *testing.T) {
	dir := t.TempDir()
	in := dcpCapture(t, dir)

	code, out, errOut := runCmd(t, "flows", "--no-db", "--format", "jsonl", in)
	if code != exitOK {
		t.Fatalf("flows: exit %d: %s", code, errOut)
	}
	conns := jsonLines(t, out)
	var got []string
	for _, c := range conns {
		if c["proto"] != "profinet" || c["service"] != "profinet-dcp" {
			t.Errorf("conn %v", c)
		}
		got = append(got, c["orig_l2_addr"].(string)+"/"+c["id.orig_h"].(string)+" > "+c["resp_l2_addr"].(string)+"/"+c["id.resp_h"].(string))
	}
	want := []string{
		"02:00:00:00:00:0c/ > 01:0e:cf:00:00:00/",             // Identify All
		"02:00:00:00:00:0c/ > 00:1b:1b:0a:0b:0c/192.168.0.10", // the PLC's answer
		"02:00:00:00:00:0c/ > 00:1b:1b:0a:0b:0c/",             // Set of its name
		"00:1b:1b:0a:0b:0c/192.168.0.10 > 01:0e:cf:00:00:01/", // its Hello
	}
	if !slices.Equal(got, want) {
		t.Errorf("flows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	code, out, errOut = runCmd(t, "flows", "--no-db", in)
	if code != exitOK || !strings.Contains(out, "01:0e:cf:00:00:00") || strings.Contains(out, "invalid") {
		t.Errorf("flows table: exit %d: %s%s", code, out, errOut)
	}

	// A conversation that never left the link is no data going abroad.
	db := filepath.Join(dir, "t.db")
	code, out, errOut = runCmd(t, "analyze", "--db", db, "--format", "jsonl", in)
	if code != exitOK {
		t.Fatalf("analyze: exit %d: %s", code, errOut)
	}
	for _, f := range findings(t, out) {
		if f.Kind == "jurisdiction" || f.DstIP == "" || strings.Contains(f.Summary, "invalid") {
			t.Errorf("finding on a layer-2 exchange: %+v", f)
		}
	}
	code, out, errOut = runCmd(t, "flows", "--db", db, "--format", "jsonl")
	if stored := jsonLines(t, out); code != exitOK || len(stored) != len(conns) {
		t.Errorf("stored flows: exit %d, %d of %d: %s", code, len(stored), len(conns), errOut)
	} else if stored[1]["id.resp_h"] != "192.168.0.10" || stored[0]["id.resp_h"] != "" {
		t.Errorf("stored flows: %v", stored[:2])
	}

	code, out, errOut = runCmd(t, "assets", "--no-db", "--format", "jsonl", in)
	if code != exitOK {
		t.Fatalf("assets: exit %d: %s", code, errOut)
	}
	hosts := jsonLines(t, out)
	if len(hosts) != 1 {
		t.Fatalf("assets: %d hosts, want the PLC only: %s", len(hosts), out)
	}
	h := hosts[0]
	if h["ip"] != "192.168.0.10" || h["mac"] != "00:1b:1b:0a:0b:0c" || !strings.Contains(out, `"names":["crane-plc-3"]`) ||
		!strings.Contains(out, `"protocols":["profinet-dcp"]`) {
		t.Errorf("assets: %s", out)
	}
}
