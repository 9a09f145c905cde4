package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/asset"
	"github.com/cargowatch/cargowatch/engine"
	"github.com/cargowatch/cargowatch/format"
	"github.com/cargowatch/cargowatch/sqlite"
)

func cmdAssets(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("assets", "INPUT...", stderr)
	var o options
	o.register(fs, true)
	mapJSON := fs.String("map-json", "", "write the communication map (nodes and edges) as JSON to this file")
	mapDOT := fs.String("map-dot", "", "write the communication map as a Graphviz digraph to this file")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "cargowatch assets: no input given (a capture file or directory)")
		return exitUsage
	}
	// The inventory reads no payload for cargo data unless asked to.
	if !flagSet(fs, "inspect-bytes") {
		o.inspect = 0
	}
	pl, code := newPipeline(&o, "assets", stderr)
	if code != exitOK {
		return code
	}
	defer pl.close()

	ctx, stop := interruptible(stderr)
	defer stop()
	store, ok := o.openStore("assets", stderr)
	if !ok {
		return exitFail
	}
	if store != nil {
		defer store.Close()
	}
	addDetectors(pl, store)
	disc := discoveryOf(pl)
	if disc == nil {
		fmt.Fprintln(stderr, "cargowatch assets: internal error: no inventory detector in the pipeline")
		return exitFail
	}
	disc.SetBaseline(o.baseline)

	srcs := openSources(fs.Args(), pl)
	ecfg := pl.engineConfig()
	// Only the inventory: the other detectors' findings are analyze's.
	ecfg.Detectors = []cw.Detector{disc}
	res, err := engine.Run(ctx, srcs.all, ecfg)
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch assets: %v\n", err)
		return exitFail
	}
	code = reportInputErrors(stderr, "assets", res.Err)

	hosts := disc.Hosts()
	flags := hostFindings(res.Findings)
	if err := printHosts(stdout, o.format, hosts, flags); err != nil {
		fmt.Fprintf(stderr, "cargowatch assets: writing output: %v\n", err)
		return exitFail
	}
	if o.format == "table" {
		st := disc.Stats()
		fmt.Fprintf(stdout, "\n%d hosts from %d conversations.", len(hosts), res.Conns)
		if st.HostsDropped+st.PeersDropped+st.NamesDropped > 0 {
			fmt.Fprintf(stdout, " Over the inventory's caps: %d conversations of further hosts, %d of further peers and %d names not kept.",
				st.HostsDropped, st.PeersDropped, st.NamesDropped)
		}
		fmt.Fprintln(stdout)
		if n := flags.count(cw.KindOTEgress) + flags.count(cw.KindNewAsset); n > 0 {
			fmt.Fprintf(stdout, "%d ot_egress and %d new_asset findings: 'cargowatch analyze' with the same inputs reports them.\n",
				flags.count(cw.KindOTEgress), flags.count(cw.KindNewAsset))
		}
		if store == nil {
			fmt.Fprintln(stdout, "No store (--no-db): new devices cannot be told from known ones.")
		}
	}
	m := disc.Map()
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{*mapJSON, m.WriteJSON}, {*mapDOT, m.WriteDOT}} {
		if out.path == "" {
			continue
		}
		if err := writeFile(out.path, out.write); err != nil {
			fmt.Fprintf(stderr, "cargowatch assets: %v\n", err)
			return exitFail
		}
	}
	return code
}

// newInventory is the passive inventory for a pipeline: the assets file
// and the policy's home and watched jurisdictions from its setup, the
// store (when there is one) as the history behind new_asset.
func newInventory(pl *pipeline, store *sqlite.DB) *asset.Discovery {
	cfg := asset.Config{Log: pl.log}
	for _, e := range pl.enrichers {
		if inv, ok := e.(*asset.Inventory); ok {
			cfg.File = inv
		}
	}
	if pl.policy != nil {
		cfg.Home = pl.policy.Home
		cfg.Watch = map[string]string{}
		for code, w := range pl.policy.Watch {
			cfg.Watch[strings.ToUpper(code)] = w.Basis
		}
	}
	if store != nil {
		cfg.History = assetHistory{store}
	}
	return asset.NewDiscovery(cfg)
}

func discoveryOf(pl *pipeline) *asset.Discovery {
	for _, d := range pl.detectors {
		if a, ok := d.(*asset.Discovery); ok {
			return a
		}
	}
	return nil
}

// assetHistory adapts the store to asset.History.
type assetHistory struct{ db *sqlite.DB }

func (h assetHistory) RecordHosts(ctx context.Context, seen []asset.Sighting) (map[netip.Addr]time.Time, time.Time, error) {
	ss := make([]sqlite.AssetSighting, len(seen))
	for i, s := range seen {
		ss[i] = sqlite.AssetSighting{Addr: s.Addr, MAC: s.MAC, First: s.First, Last: s.Last}
	}
	return h.db.RecordAssets(ctx, ss)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// findingFlags counts findings per kind and host address.
type findingFlags map[string]map[netip.Addr]int

func hostFindings(fs []cw.Finding) findingFlags {
	m := findingFlags{}
	for _, f := range fs {
		if m[f.Kind] == nil {
			m[f.Kind] = map[netip.Addr]int{}
		}
		m[f.Kind][f.Src.Addr]++
	}
	return m
}

func (m findingFlags) count(kind string) int {
	n := 0
	for _, c := range m[kind] {
		n += c
	}
	return n
}

func printHosts(w io.Writer, formatName string, hosts []asset.Host, flags findingFlags) error {
	if formatName == "jsonl" {
		j := format.NewJSONL(w)
		for i := range hosts {
			r := hosts[i].Record()
			r["new"] = flags[cw.KindNewAsset][hosts[i].Addr] > 0
			r["ot_egress"] = flags[cw.KindOTEgress][hosts[i].Addr]
			if err := j.Write(r); err != nil {
				return err
			}
		}
		return j.Flush()
	}
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IP\tMAC\tVENDOR\tNAMES\tROLES\tPROTOCOLS\tZONE\tKNOWN\tFIRST SEEN\tLAST SEEN\tPEERS\tFLAGS")
	for _, h := range hosts {
		known := "no"
		if h.Known {
			known = "yes"
		}
		var fl []string
		if n := flags[cw.KindOTEgress][h.Addr]; n > 0 {
			fl = append(fl, fmt.Sprintf("ot_egress×%d", n))
		}
		if flags[cw.KindNewAsset][h.Addr] > 0 {
			fl = append(fl, "new")
		}
		if !h.Seen {
			fl = append(fl, "not seen")
		}
		if !h.Local {
			fl = append(fl, "remote "+h.Country)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", h.Addr, dash(h.MAC), dash(cut(h.Vendor, 24)),
			dash(cut(strings.Join(h.Names, ","), 40)), dash(strings.Join(h.Roles, ",")), dash(cut(strings.Join(h.Protocols, ","), 40)),
			dash(h.Zone), known, when(h.FirstSeen), when(h.LastSeen), len(h.Peers), dash(strings.Join(fl, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cut shortens s to n runes for a table cell; names and vendors are
// outside input, so a long one must not push every column away.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
