// Command ouigen builds asset/oui.txt.gz, the vendor table embedded in
// cargowatch, from the IEEE Registration Authority's public listings
// (MA-L, MA-M, MA-S and IAB CSV files) as Debian's ieee-data package ships
// them under /usr/share/ieee-data. IEEE asserts no copyright in these
// listings and does not restrict their distribution.
//
// Output: gzip of a comment line naming the source, then one line per
// assignment, "HEXPREFIX<TAB>Organization", sorted, where HEXPREFIX has 6
// (MA-L), 7 (MA-M) or 9 (MA-S, IAB) hex digits. Addresses are dropped: the
// inventory only needs the name, and the table stays small.
package main

import (
	"compress/gzip"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	out := flag.String("o", "oui.txt.gz", "output file")
	source := flag.String("source", "", "text naming where the listings came from, written in the header")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ouigen -o oui.txt.gz LISTING.csv...")
		os.Exit(2)
	}
	rows := map[string]string{}
	for _, path := range flag.Args() {
		if err := read(path, rows); err != nil {
			fmt.Fprintf(os.Stderr, "ouigen: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ouigen:", err)
		os.Exit(1)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	// No timestamp in the gzip header: regenerating from the same
	// listings gives the same bytes.
	fmt.Fprintf(zw, "# IEEE Registration Authority public listings (MA-L, MA-M, MA-S, IAB)%s; %d assignments\n", *source, len(keys))
	for _, k := range keys {
		fmt.Fprintf(zw, "%s\t%s\n", k, rows[k])
	}
	if err := zw.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "ouigen:", err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "ouigen:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ouigen: %d assignments from %d files into %s\n", len(keys), flag.NArg(), filepath.Base(*out))
}

func read(path string, rows map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	header := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if header {
			header = false
			if len(rec) < 3 || rec[1] != "Assignment" {
				return fmt.Errorf("not an IEEE listing (header %q)", rec)
			}
			continue
		}
		if len(rec) < 3 {
			continue
		}
		hex := strings.ToUpper(strings.TrimSpace(rec[1]))
		if n := len(hex); n != 6 && n != 7 && n != 9 {
			continue
		}
		name := clean(rec[2])
		// "Private" assignments name nobody; leaving them out lets the
		// lookup say nothing rather than something useless.
		if name == "" || strings.EqualFold(name, "private") {
			continue
		}
		rows[hex] = name
	}
}

// clean trims the stray punctuation and whitespace some listing rows carry
// ("Siemens AG,") and folds inner runs of spaces.
func clean(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.TrimRight(s, " ,;")
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r < 0x20 {
			return ' '
		}
		return r
	}, s)
}
