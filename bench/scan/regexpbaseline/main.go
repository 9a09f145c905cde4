// Command regexpbaseline is the plain Go regexp implementation of the
// cargowatch identifier patterns, for bench/scan: one alternation over
// every file's bytes, then the same check-digit validation, so that the
// difference measured is the prefilter, not the work done per match.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cargowatch/cargowatch/dlp"
)

var re = regexp.MustCompile(
	`\b([A-Z]{3}[UJZ])[ -]?(\d{6})[ -]?(\d)\b` + // ISO 6346 container
		`|\b(\d{3})[- ](\d{7})(\d)` + // IATA air waybill
		`|IMO[ :.#]*(?:No\.? ?)?(\d{7})\b` + // IMO ship number
		`|\b(?:\(00\) ?)?(\d{18})\b` + // SSCC
		`|\b[A-Z]{3}\d{4,5}[A-Z0-9]{2}\b` + // ULD
		`|(?i:hs code|tariff|hts)\W{0,3}\d{4}\.?\d{2}` + // HS code
		`|EORI\W{0,3}[A-Z]{2}\d{5,15}` + // EORI
		`|UNH\+|ISA\*|(?m:^F[A-Z]{2}/\d+$)`) // message headers

// containerOnly is the ISO 6346 pattern alone, the fastest a regexp
// baseline can be made; run with -container to measure it.
var containerOnly = regexp.MustCompile(`\b([A-Z]{3}[UJZ])[ -]?(\d{6})[ -]?(\d)\b`)

func main() {
	only := flag.Bool("container", false, "match the ISO 6346 pattern only")
	flag.Parse()
	if *only {
		re = containerOnly
	}
	start := time.Now()
	var bytes int64
	counts := map[string]int{}
	for _, root := range flag.Args() {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			bytes += int64(len(b))
			for _, m := range re.FindAllSubmatchIndex(b, -1) {
				switch {
				case m[2] >= 0:
					s := string(b[m[2]:m[3]]) + string(b[m[4]:m[5]])
					if dlp.ContainerCheckDigit(s) == int(b[m[6]]-'0') {
						counts["container"]++
					}
				case len(m) > 8 && m[8] >= 0:
					if dlp.AWBCheckDigit(string(b[m[10]:m[11]])) == int(b[m[12]]-'0') {
						counts["awb"]++
					}
				default:
					counts["other"]++
				}
			}
			return nil
		})
	}
	el := time.Since(start).Seconds()
	fmt.Printf("%d bytes in %.3fs (%.1f MB/s) %v\n", bytes, el, float64(bytes)/1e6/el, counts)
}
