// Command gencorpus writes the mixed benchmark corpus for bench/scan:
// ordinary text and code (the directories given, .gz files decoded) in
// 4 MiB files, with a generated cargo message (EDIFACT BAPLIE, X12 315,
// Cargo-IMP FWB, DCSA JSON, all with valid check digits) after every
// ~32 KiB of text, so that about 1 % of the bytes are cargo messages.
// It prints how many identifiers of each kind it planted.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/cargowatch/cargowatch/dlp"
)

// every is the text between two messages: ~1 % of the bytes are messages.
const every = 32 << 10

func main() {
	out := flag.String("out", "", "output directory")
	size := flag.Int64("size", 110<<20, "bytes to write")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: gencorpus -out DIR [-size BYTES] SRCDIR...")
		os.Exit(2)
	}
	g := &gen{r: rand.New(rand.NewPCG(42, 42)), planted: map[string]int{}}
	var text bytes.Buffer
	var written int64
	file := 0
	flush := func() error {
		name := filepath.Join(*out, fmt.Sprintf("part-%04d.txt", file))
		file++
		written += int64(text.Len())
		err := os.WriteFile(name, text.Bytes(), 0o644)
		text.Reset()
		return err
	}
	next := every
	done := fmt.Errorf("done")
	for written < *size {
		before := written
		for _, root := range flag.Args() {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return nil
				}
				b := readText(p)
				for len(b) > 0 {
					k := min(len(b), next)
					text.Write(b[:k])
					b = b[k:]
					next -= k
					if next == 0 {
						text.WriteString(g.message())
						next = every
					}
					if text.Len() >= 4<<20 {
						if err := flush(); err != nil {
							return err
						}
						if written >= *size {
							return done
						}
					}
				}
				return nil
			})
			if err == done {
				break
			}
			if err != nil {
				slog.Error("gencorpus", "err", err)
				os.Exit(1)
			}
		}
		if written == before && text.Len() == 0 {
			slog.Error("gencorpus: no text found", "dirs", flag.Args())
			os.Exit(1)
		}
	}
	if text.Len() > 0 {
		flush()
	}
	fmt.Printf("wrote %d bytes in %d files; planted %v; message bytes %d (%.2f%%)\n",
		written, file, g.planted, g.msgBytes, 100*float64(g.msgBytes)/float64(written))
}

// readText returns a file's text (decoded when .gz), nil for binaries.
func readText(p string) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(p, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil
		}
		r = zr
	}
	b, _ := io.ReadAll(io.LimitReader(r, 16<<20))
	if bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0 {
		return nil
	}
	return b
}

type gen struct {
	r        *rand.Rand
	planted  map[string]int
	msgBytes int64
}

func (g *gen) container() string {
	owners := []string{"OOLU", "MSCU", "MAEU", "CMAU", "TGHU", "HLXU", "CBHU"}
	s := fmt.Sprintf("%s%06d", owners[g.r.IntN(len(owners))], g.r.IntN(1000000))
	g.planted["container"]++
	return s + fmt.Sprint(dlp.ContainerCheckDigit(s))
}

func (g *gen) awb() string {
	serial := fmt.Sprintf("%07d", 1000000+g.r.IntN(8999999))
	g.planted["awb"]++
	return fmt.Sprintf("%03d-%s%d", 100+g.r.IntN(900), serial, dlp.AWBCheckDigit(serial))
}

func (g *gen) message() string {
	var b strings.Builder
	b.WriteString("\n")
	switch g.r.IntN(4) {
	case 0:
		b.WriteString("UNB+UNOA:2+TERMINAL+CARRIER+240101:1200+1'\nUNH+1+BAPLIE:D:95B:UN:SMDG20'\nBGM++1+9'\n")
		for range 5 {
			fmt.Fprintf(&b, "LOC+147+0%06d::5'\nMEA+WT++KGM:%d'\nLOC+9+NLRTM:139:6'\nEQD+CN+%s+4500+++5'\n", g.r.IntN(999999), 1000+g.r.IntN(30000), g.container())
		}
		b.WriteString("UNT+23+1'\nUNZ+1+1'\n")
	case 1:
		b.WriteString("ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*U*00401*000000001*0*P*>~\n")
		b.WriteString("GS*QO*SENDER*RECEIVER*20240101*1200*1*X*004010~\nST*315*0001~\n")
		for range 3 {
			c := g.container()
			fmt.Fprintf(&b, "B4***A*20240101*1200**%s*%s*E~\nR4*L*UN*USNYC*NEW YORK~\n", c[:4], c[4:])
		}
		b.WriteString("SE*8*0001~\nGE*1*1~\nIEA*1*000000001~\n")
	case 2:
		fmt.Fprintf(&b, "FWB/16\n%sFRAORD/T2K10MC0.1\nRTG/ORDLH\nSHP\nNAM/EXAMPLE SHIPPER\nCNE\nNAM/EXAMPLE CONSIGNEE\n\n", g.awb())
	case 3:
		fmt.Fprintf(&b, `{"transportDocumentReference":"TD%06d","utilizedTransportEquipments":[{"equipmentReference":"%s"},{"equipmentReference":"%s"}],"placeOfDelivery":{"UNLocationCode":"DEHAM"}}`+"\n",
			g.r.IntN(999999), g.container(), g.container())
	}
	g.msgBytes += int64(b.Len())
	return b.String()
}
