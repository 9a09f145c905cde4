package asset

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		wantErr    string // substring; "" means success
		lookup     string
		wantName   string
	}{
		{"csv", "name,address,role,zone,owner\nplc-1,10.0.0.5,crane-plc,ot-crane,ops\n", "", "10.0.0.5", "plc-1"},
		{"csv cidr", "name,address,role\noffice,10.1.0.0/16,office\nboss,10.1.2.3,office\n", "", "10.1.9.9", "office"},
		{"csv exact beats cidr", "name,address,role\noffice,10.1.0.0/16,office\nboss,10.1.2.3,office\n", "", "10.1.2.3", "boss"},
		{"yaml", "assets:\n  - name: hmi\n    address: 10.0.0.9\n    role: crane-hmi\n", "", "10.0.0.9", "hmi"},
		{"yaml list", "- name: hmi\n  address: 10.0.0.9 00:1b:1b:00:00:01\n", "", "10.0.0.9", "hmi"},
		{"bad address", "name,address\nx,10.0.0.300\n", "t.csv:2: address \"10.0.0.300\"", "", ""},
		{"bad column", "name,adress\n", "unknown column \"adress\"", "", ""},
		{"yaml bad key", "- name: a\n  adress: 1.2.3.4\n", "t.csv:2: unknown key \"adress\"", "", ""},
		{"yaml not list", "foo: 1\n", "want a list", "", ""},
		{"no address column", "name,role\nx,y\n", "lacks the \"address\" column", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse("t.csv", []byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e := inv.Lookup(netip.MustParseAddr(tc.lookup), "")
			if e == nil || e.Name != tc.wantName {
				t.Fatalf("Lookup(%s) = %+v, want %s", tc.lookup, e, tc.wantName)
			}
		})
	}
}

func TestEnrichMakesNamedAddressLocal(t *testing.T) {
	inv, err := Parse("a", []byte("name,address,role\nscanner,147.32.80.37,scanner\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cw.Conn{Orig: cw.Endpoint{Addr: netip.MustParseAddr("147.32.80.37"), Country: "CZ"}, Resp: cw.Endpoint{Addr: netip.MustParseAddr("1.1.1.1")}}
	inv.Enrich(c)
	if !c.Orig.Local || c.Orig.Country != "" || c.Orig.Asset == nil || c.Orig.Asset.Role != "scanner" || c.Resp.Asset != nil {
		t.Fatalf("enriched: %+v / %+v", c.Orig, c.Resp)
	}
}

// A huge file, or a device that never ends (--assets /dev/urandom read
// 15 GB before), is refused after maxFile bytes, naming the path.
func TestLoadFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "assets.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("name,address\nplc,10.0.0.1\n")
	if err := f.Truncate(maxFile + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("LoadFile(%d bytes) = %v, want a too-large error naming the file", maxFile+1, err)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.csv")); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name,address,role,zone,owner\nplc-1,10.0.0.5,crane-plc,ot-crane,ops\n"))
	f.Add([]byte("assets:\n  - name: hmi\n    address: 10.0.0.9\n"))
	f.Add([]byte("- {name: x, address: \"fe80::/10\"}\n"))
	f.Add([]byte("name,address,zone,zone_allow\na,10.0.0.1,ot-cell,it;internet\nb,10.0.1.0/24,it,\n"))
	f.Add([]byte("- {name: a, address: 10.0.0.1, zone: ot, zone_allow: [it, internet]}\n- {address: 10.1.0.0/16, zone: it}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz", data)
		if err == nil {
			inv.Lookup(netip.MustParseAddr("10.0.0.5"), "00:1b:1b:00:00:01")
			for _, e := range inv.Entries {
				inv.Conduits(e.Zone, "it")
			}
		}
	})
}
