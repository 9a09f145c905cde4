package zeek

import (
	"fmt"
	"testing"
)

// TestInterner: equal bytes give the same string, different bytes never
// do, whatever the length (the cache compares values of up to 16 bytes
// as words), and past the cap values are still right, only not shared.
func TestInterner(t *testing.T) {
	in := newInterner(64)
	var vals []string
	for _, base := range []string{"a", "tcp", "udp", "ShADadFf", "ShADadFfX", "0123456789abcdef", "0123456789abcdefg", "dns,ssl,http,modbus,long-enough"} {
		for n := 1; n <= len(base); n++ {
			vals = append(vals, base[:n])
		}
	}
	vals = append(vals, "a\x00", "\x00", "\x00\x00", "tcp\x00\x00\x00\x00\x00")
	for round := range 3 {
		for _, v := range vals {
			// A buffer with bytes after the value, as a line has.
			buf := []byte(v + "\tXXXXXXXXXXXXXXXXXX")
			if got := in.get(buf[:len(v)]); got != v {
				t.Fatalf("round %d: get(%q) = %q", round, v, got)
			}
			// And one whose capacity ends with the value.
			if got := in.get([]byte(v)[:len(v):len(v)]); got != v {
				t.Fatalf("round %d: get(%q) without spare capacity = %q", round, v, got)
			}
		}
	}
	if len(in.m) != 64 {
		t.Errorf("interned %d values, cap 64", len(in.m))
	}
	for i := range 200 {
		v := fmt.Sprintf("v%d", i)
		if got := in.get([]byte(v)); got != v {
			t.Fatalf("past the cap: get(%q) = %q", v, got)
		}
	}
	if in.get(nil) != "" {
		t.Error("empty value")
	}
}
