package dissect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// Real first client and server segments extracted with tshark
// (tcp.payload) from the shared corpus. Expected JA3 values are tshark's
// (tls.handshake.ja3); expected JA4 _b and _c parts are nDPI's (the
// .pcap.out files beside the captures) or, where nDPI has none, computed
// from tshark's field dump by a separate script following the FoxIO spec.
var (
	// pcap/c2/ndpi-emotet.pcap: TLS 1.2, no SNI, no ALPN.
	helloEmotet = mustHex("" +
		"16030300900100008c03036266d1641025fca500bdb4e57e3fd095d610b57daad3ade67d5c931357037611000026c02c" +
		"c02bc030c02fc024c023c028c027c00ac009c014c013009d009c003d003c0035002f000a0100003d000a00080006001d" +
		"00170018000b00020100000d001a00180804080508060401050102010403050302030202060106030023000000170000" +
		"ff01000100")
	serverEmotet = mustHex("" +
		"16030300410200003d0303b9daa70c872281ca5df3e315155936e51c735fd5948bc0f8a88a8b92bf15dac400c0300000" +
		"15ff01000100000b0004030001020023000000170000")
	// pcap/dns/ndpi-dns2tcp_tunnel.pcap: TLS 1.3 offered, ALPN, no SNI.
	helloDNS2TCP = mustHex("" +
		"1603010100010000fc030332aa4b6da9c7f093a68efc61ee3375d01ae99e61bbc75ec52a5f801fca3f233c2015b82f28" +
		"0426d16fc70a9f3e306b3c125738fe0c56e8e45c02949577e98cf43c0026c02fc030c02bc02ccca8cca9c013c009c014" +
		"c00a009c009d002f0035c012000a1301130313020100008d33740000000500050100000000000a000a0008001d001700" +
		"180019000b00020100000d001a0018080404030807080508060401050106010503060302010203ff010001000010000e" +
		"000c02683208687474702f312e3100120000002b00050403040303003300260024001d0020d8a2fe95a7dab891b066af" +
		"9f2fecb0e4e727a6f1209c4ec2a90a19349ea79c74")
	serverDNS2TCP = mustHex("" +
		"160303007a020000760303977ee00c96830f2691df8e9f23f41bdb6fe020c3b1c956266f874494fa2598d42015b82f28" +
		"0426d16fc70a9f3e306b3c125738fe0c56e8e45c02949577e98cf43c130100002e00330024001d0020059a2add468e0e" +
		"069e598b3858f9bbc84f2a403aaf55307c3ff65e55d13d0526002b00020304")
	// pcap/c2/slips-test-cc-capture-2.pcap: curl to testing.com.
	helloSlips = mustHex("" +
		"1603010200010001fc030316777380e403f267443edf4deac8c67bf40a785dfda4edffc5424fa2c0d75b04203e30e8fb" +
		"3e10acc802b7bbe884ad32614765194cca334b582d36b63a98cdf7af003e130213031301c02cc030009fcca9cca8ccaa" +
		"c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000175" +
		"00000010000e00000b74657374696e672e636f6d000b000403000102000a000c000a001d0017001e0019001833740000" +
		"0010000e000c02683208687474702f312e31001600000017000000310000000d002a0028040305030603080708080809" +
		"080a080b080408050806040105010601030303010302040205020602002b00050403040303002d000201010033002600" +
		"24001d0020d229817eae379b299c5168bb02c7101ade4c7656aa293c059eac91d260e5785f001500bc00000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000000000000000000000000000000000000000000000")
	serverSlips = mustHex("" +
		"160303007a020000760303d946a79f51a83b3d5eaa6515b1af8ce59c1848547d0ee10aa0ed8eb6b88f4631203e30e8fb" +
		"3e10acc802b7bbe884ad32614765194cca334b582d36b63a98cdf7af130200002e00330024001d002047badf57173733" +
		"f5feaa60446747ac2da8f71264dfa68c627acf38cb730c212a002b00020304")
	// pcap/edge/zeek-pppoe-over-qinq.pcap: xp.apple.com, 7 ALPN values.
	helloPPPoE = mustHex("" +
		"1603010200010001fc0303c9bcee53a4cea20ae58758dd9615653206b28923789d4cfb8b597d8c4605a9182011e6d913" +
		"544a6e701512f9aeaec890f5cef7e38fb423e1852669d8f448e6fe3c0028c02cc02bc024c023c00ac009cca9c030c02f" +
		"c028c027c014c013cca8009d009c003d003c0035002f0100018bff0100010000000011000f00000c78702e6170706c65" +
		"2e636f6d00170000000d0014001204030804040105030805050108060601020100050005010000000033740000001200" +
		"0000100030002e0268320568322d31360568322d31350568322d313408737064792f332e3106737064792f3308687474" +
		"702f312e31000b00020100000a00080006001d00170018001500fa000000000000000000000000000000000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000000000000000000000000000000000000000000000")
)

// helloSpec is the client of the example in FoxIO's JA4.md: its ciphers,
// extensions and signature algorithms in the order listed there, plus
// GREASE values that must be ignored. JA4.md gives the expected
// fingerprint t13d1516h2_8daaf6152771_e5627efa2ab1.
func helloSpec() []byte {
	u16s := func(vs ...uint16) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.BigEndian.AppendUint16(b, v)
		}
		return b
	}
	vec16 := func(b []byte) []byte { return append(u16s(uint16(len(b))), b...) }
	ext := func(typ uint16, data []byte) []byte { return append(u16s(typ), vec16(data)...) }

	var exts []byte
	exts = append(exts, ext(0x1a1a, nil)...) // GREASE
	for _, e := range []uint16{0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015} {
		var d []byte
		switch e {
		case 0x0000:
			name := []byte("example.com")
			d = vec16(append([]byte{0}, vec16(name)...))
		case 0x0010:
			d = vec16([]byte("\x02h2\x08http/1.1"))
		case 0x000d:
			d = vec16(u16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601))
		case 0x002b:
			v := u16s(0x2a2a, 0x0304, 0x0303)
			d = append([]byte{byte(len(v))}, v...)
		case 0x000a:
			d = vec16(u16s(0x3a3a, 0x001d, 0x0017, 0x0018))
		case 0x000b:
			d = []byte{1, 0}
		}
		exts = append(exts, ext(e, d)...)
	}
	var body []byte
	body = append(body, 3, 3)
	body = append(body, make([]byte, 32)...)
	body = append(body, 0) // session id
	body = append(body, vec16(u16s(0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035))...)
	body = append(body, 1, 0) // null compression
	body = append(body, vec16(exts)...)
	hs := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{0x16, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func TestClientHello(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		sni     string
		alpn    []string
		version string
		ja4     string
		ja3     string
	}{
		// nDPI prints t12d... here although the hello has no SNI extension;
		// JA4.md says "i" then, and the hash parts agree.
		{"emotet", helloEmotet, "", nil, "TLSv12", "t12i190600_d83cc789557e_2dae41c691ec", "51c64c77e60f3980eea90869b68c58a8"},
		{"dns2tcp", helloDNS2TCP, "", []string{"h2", "http/1.1"}, "TLSv13", "t13i1910h2_9dc949149365_d811adc85aab", "547df21d727c7b3a5dcb59aa0fd97c2c"},
		{"slips curl", helloSlips, "testing.com", []string{"h2", "http/1.1"}, "TLSv13", "t13d3113h2_e8f1e7e78f70_ce5650b735ce", "f436b9416f37d134cadd04886327d3e8"},
		{"pppoe apple", helloPPPoE, "xp.apple.com", []string{"h2", "h2-16", "h2-15", "h2-14", "spdy/3.1", "spdy/3", "http/1.1"}, "TLSv12", "t12d2011h2_2a284e3b0c56_8c799273bd37", "92306a1faec06f00b17da7dd2a607d69"},
		{"JA4.md example", helloSpec(), "example.com", []string{"h2", "http/1.1"}, "TLSv13", "t13d1516h2_8daaf6152771_e5627efa2ab1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ClientHello(tt.in)
			if err != nil {
				t.Fatalf("ClientHello: %v", err)
			}
			if got.SNI != tt.sni || !slices.Equal(got.ALPN, tt.alpn) || got.Version != tt.version || got.JA4 != tt.ja4 {
				t.Errorf("got %+v\nwant sni=%q alpn=%q version=%s ja4=%s", got, tt.sni, tt.alpn, tt.version, tt.ja4)
			}
			if tt.ja3 != "" && got.JA3 != tt.ja3 {
				t.Errorf("JA3 %s, want %s", got.JA3, tt.ja3)
			}
		})
	}
}

// split re-frames a single-record handshake into records of at most n
// bytes, as a client may legally send it.
func split(rec []byte, n int) []byte {
	frag := rec[5 : 5+int(binary.BigEndian.Uint16(rec[3:]))]
	var out []byte
	for len(frag) > 0 {
		k := min(n, len(frag))
		out = append(out, rec[0], rec[1], rec[2], byte(k>>8), byte(k))
		out = append(out, frag[:k]...)
		frag = frag[k:]
	}
	return out
}

func TestClientHelloRecords(t *testing.T) {
	want, err := ClientHello(helloSlips)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 100, 200, 511} {
		multi := split(helloSlips, n)
		got, err := ClientHello(multi)
		if err != nil {
			t.Fatalf("records of %d: %v", n, err)
		}
		if got.JA4 != want.JA4 || got.JA3 != want.JA3 || got.SNI != want.SNI {
			t.Errorf("records of %d: %+v, want %+v", n, got, want)
		}
		// Every cut of the stream must ask for more, never fail or panic.
		for i := range len(multi) {
			if _, err := ClientHello(multi[:i]); !errors.Is(err, ErrShort) {
				t.Fatalf("records of %d cut at %d/%d: %v, want ErrShort", n, i, len(multi), err)
			}
		}
	}
}

func TestClientHelloErrors(t *testing.T) {
	badSID := bytes.Clone(helloEmotet)
	badSID[5+4+2+32] = 33
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), ErrNotTLS},
		{"ssh", []byte("SSH-2.0-OpenSSH_9.6\r\n"), ErrNotTLS},
		{"tls version 3.9", []byte{0x16, 3, 9, 0, 4}, ErrNotTLS},
		{"application data", []byte{0x17, 3, 3, 0, 4, 1, 2, 3, 4}, ErrNotTLS},
		{"server hello", serverSlips, ErrNotTLS},
		{"zero record", []byte{0x16, 3, 1, 0, 0}, ErrNotTLS},
		{"session id 33", badSID, ErrMalformed},
		{"one byte", []byte{0x16}, ErrShort},
		{"empty", nil, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ClientHello(tt.in)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("got %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestServerHelloVersion(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"emotet tls1.2", serverEmotet, "TLSv12", nil},
		{"dns2tcp tls1.3 via supported_versions", serverDNS2TCP, "TLSv13", nil},
		{"slips tls1.3", serverSlips, "TLSv13", nil},
		{"cut", serverSlips[:60], "", ErrShort},
		{"client hello", helloSlips, "", ErrNotTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ServerHelloVersion(tt.in)
			if got != tt.want || tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestJA4ALPNChars(t *testing.T) {
	// The cases JA4.md lists for non-alphanumeric first or last bytes.
	tests := []struct {
		alpn []byte
		want string
	}{
		{[]byte{0xab}, "ab"},
		{[]byte{0xab, 0xcd}, "ad"},
		{[]byte{0x30, 0xab}, "3b"},
		{[]byte{0x30, 0x31, 0xab, 0xcd}, "3d"},
		{[]byte{0x30, 0xab, 0xcd, 0x31}, "01"},
		{[]byte("h2"), "h2"},
		{[]byte("http/1.1"), "h1"},
		{[]byte("x"), "xx"},
		{nil, "00"},
	}
	for _, tt := range tests {
		list := append([]byte{byte(len(tt.alpn))}, tt.alpn...)
		if got := string(appendALPNChars(nil, list)); got != tt.want {
			t.Errorf("%x: %q, want %q", tt.alpn, got, tt.want)
		}
	}
}

func FuzzClientHello(f *testing.F) {
	for _, s := range [][]byte{helloEmotet, helloDNS2TCP, helloSlips, helloPPPoE, helloSpec(), split(helloSlips, 100), serverSlips} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ClientHello(b)
		if err == nil && (got == nil || len(got.JA4) != 36 || len(got.JA3) != 32 || len(got.ALPN) > maxALPN) {
			t.Fatalf("bad result %+v", got)
		}
		_, _ = ServerHelloVersion(b)
	})
}

func BenchmarkClientHello(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(helloSlips)))
	for b.Loop() {
		if _, err := ClientHello(helloSlips); err != nil {
			b.Fatal(err)
		}
	}
}
