// Command gen writes geo/jurisdiction_prefixes.gz: the prefixes announced
// by the ASNs of geo/jurisdictions.yaml, so the jurisdiction table can match
// by address when no ASN database is given.
//
// Input is the npm package @ip-location-db/asn (CSV of ip_range_start,
// ip_range_end, asn, org; CC BY 4.0, built from RouteViews, the five RIRs'
// data via NRO, and DB-IP). Without -tgz it runs `npm pack` to fetch it.
// Run from geo/ through `go generate`:
//
//	go run ./internal/gen -yaml jurisdictions.yaml -out jurisdiction_prefixes.gz
//	go run ./internal/gen -tgz /tmp/ip-location-db-asn-2.3.2026061719.tgz ...
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cargowatch/cargowatch/geo"
)

func main() {
	yamlPath := flag.String("yaml", "jurisdictions.yaml", "curated jurisdiction table")
	tgz := flag.String("tgz", "", "npm tarball of @ip-location-db/asn (default: fetch with npm pack)")
	out := flag.String("out", "jurisdiction_prefixes.gz", "output file")
	flag.Parse()
	if err := run(*yamlPath, *tgz, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

type span struct {
	lo, hi netip.Addr
	asn    uint32
}

func run(yamlPath, tgz, out string) error {
	data, err := os.ReadFile(yamlPath)
	if err != nil {
		return err
	}
	entries, err := geo.ParseJurisdictions(yamlPath, data)
	if err != nil {
		return err
	}
	want := map[uint32]bool{}
	var pats []orgPattern
	for _, e := range entries {
		for _, a := range e.ASNs {
			want[a] = true
		}
		for _, p := range e.OrgContains {
			pats = append(pats, orgPattern{sub: strings.TrimPrefix(p, "^"), anchor: strings.HasPrefix(p, "^")})
		}
	}
	if tgz == "" {
		dir, err := os.MkdirTemp("", "cargowatch-gen")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("npm", "pack", "--silent", "@ip-location-db/asn")
		cmd.Dir = dir
		cmd.Stderr = os.Stderr
		name, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("npm pack @ip-location-db/asn: %w", err)
		}
		tgz = filepath.Join(dir, strings.TrimSpace(string(name)))
	}
	spans, orgs, version, err := readTarball(tgz, want, pats)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	return write(out, spans, orgs, version, len(want))
}

// orgPattern is an entry's org_contains pattern, lower case as Validate
// leaves it. Province and subsidiary ASNs of the listed operators
// ("CHINANET Jiangsu province network") are taken in by their names, so
// the table does not depend on listing every one of them by number.
type orgPattern struct {
	sub    string
	anchor bool
}

func matchOrg(pats []orgPattern, org string) bool {
	org = strings.ToLower(org)
	for _, p := range pats {
		if p.anchor && strings.HasPrefix(org, p.sub) || !p.anchor && strings.Contains(org, p.sub) {
			return true
		}
	}
	return false
}

// readTarball streams the CSVs out of the npm tarball, keeping rows of the
// wanted ASNs and of ASNs whose name matches an organisation pattern, with
// the dataset's name of each AS kept.
func readTarball(path string, want map[uint32]bool, pats []orgPattern) ([]span, map[uint32]string, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, "", err
	}
	version := strings.TrimSuffix(filepath.Base(path), ".tgz")
	tr := tar.NewReader(zr)
	var spans []span
	orgs := map[uint32]string{}
	seen := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, "", err
		}
		name := filepath.Base(h.Name)
		if name != "asn-ipv4.csv" && name != "asn-ipv6.csv" {
			continue
		}
		seen++
		r := csv.NewReader(bufio.NewReader(tr))
		r.FieldsPerRecord = -1
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, nil, "", fmt.Errorf("%s: %w", name, err)
			}
			if len(rec) < 3 {
				return nil, nil, "", fmt.Errorf("%s: short row %q", name, rec)
			}
			n, err := strconv.ParseUint(rec[2], 10, 32)
			if err != nil {
				return nil, nil, "", fmt.Errorf("%s: asn %q: %w", name, rec[2], err)
			}
			org := ""
			if len(rec) > 3 {
				org = strings.TrimSpace(rec[3])
			}
			if !want[uint32(n)] && !matchOrg(pats, org) {
				continue
			}
			if _, ok := orgs[uint32(n)]; !ok && org != "" {
				orgs[uint32(n)] = org
			}
			lo, err1 := netip.ParseAddr(rec[0])
			hi, err2 := netip.ParseAddr(rec[1])
			if err := errors.Join(err1, err2); err != nil {
				return nil, nil, "", fmt.Errorf("%s: %w", name, err)
			}
			spans = append(spans, span{lo, hi, uint32(n)})
		}
	}
	if seen != 2 {
		return nil, nil, "", fmt.Errorf("want asn-ipv4.csv and asn-ipv6.csv in the tarball, found %d of them", seen)
	}
	return spans, orgs, version, nil
}

// merge joins adjacent or overlapping ranges of the same ASN; the dataset
// splits ranges at boundaries of its sources.
func merge(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int {
		if c := a.lo.Compare(b.lo); c != 0 {
			return c
		}
		return int(a.asn) - int(b.asn)
	})
	var out []span
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].asn == s.asn && out[n-1].lo.Is4() == s.lo.Is4() &&
			(s.lo.Compare(out[n-1].hi) <= 0 || out[n-1].hi.Next() == s.lo) {
			if s.hi.Compare(out[n-1].hi) > 0 {
				out[n-1].hi = s.hi
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// cidrs splits an inclusive range into the fewest prefixes.
func cidrs(lo, hi netip.Addr) []netip.Prefix {
	bitlen := lo.BitLen()
	toInt := func(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }
	toAddr := func(x *big.Int) netip.Addr {
		b := make([]byte, bitlen/8)
		x.FillBytes(b)
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	l, h := toInt(lo), toInt(hi)
	one := big.NewInt(1)
	var out []netip.Prefix
	for l.Cmp(h) <= 0 {
		bits := bitlen
		for bits > 0 {
			size := new(big.Int).Lsh(one, uint(bitlen-bits+1))
			if new(big.Int).Mod(l, size).Sign() != 0 {
				break
			}
			last := new(big.Int).Add(l, size)
			last.Sub(last, one)
			if last.Cmp(h) > 0 {
				break
			}
			bits--
		}
		out = append(out, netip.PrefixFrom(toAddr(l), bits))
		l.Add(l, new(big.Int).Lsh(one, uint(bitlen-bits)))
	}
	return out
}

func write(path string, spans []span, orgs map[uint32]string, version string, nasn int) error {
	spans = merge(spans)
	// Overlaps between different ASNs (the dataset's own conflicts) are
	// resolved for the earlier range so lookups stay unambiguous.
	byASN := map[uint32][]netip.Prefix{}
	var prevHi netip.Addr
	dropped := 0
	for _, s := range spans {
		if prevHi.IsValid() && prevHi.Is4() == s.lo.Is4() && s.lo.Compare(prevHi) <= 0 {
			if s.hi.Compare(prevHi) <= 0 {
				dropped++
				continue
			}
			s.lo = prevHi.Next()
		}
		prevHi = s.hi
		byASN[s.asn] = append(byASN[s.asn], cidrs(s.lo, s.hi)...)
	}
	asns := make([]uint32, 0, len(byASN))
	for a := range byASN {
		asns = append(asns, a)
	}
	slices.Sort(asns)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(zw)
	fmt.Fprintf(w, "# prefixes announced by the ASNs of jurisdictions.yaml and by ASes whose names match its org_contains patterns; written by geo/internal/gen\n")
	fmt.Fprintf(w, "# source: npm @ip-location-db/asn (%s), CC BY 4.0: RouteViews (routeviews.org), NRO (nro.net), DB-IP (db-ip.com)\n", version)
	total := 0
	for _, a := range asns {
		if name := strings.Join(strings.Fields(orgs[a]), " "); name != "" {
			fmt.Fprintf(w, "AS%d %s\n", a, name)
		} else {
			fmt.Fprintf(w, "AS%d\n", a)
		}
		for _, p := range byASN[a] {
			fmt.Fprintln(w, p)
			total++
		}
	}
	if err := errors.Join(w.Flush(), zw.Close(), f.Close()); err != nil {
		return err
	}
	st, _ := os.Stat(path)
	slog.Info("wrote", "file", path, "asns_wanted", nasn, "asns_found", len(asns), "prefixes", total, "overlaps_dropped", dropped, "bytes", st.Size())
	return nil
}
