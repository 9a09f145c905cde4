// Package sim generates the packet capture of a simulated logistics hub (a
// Hamburg container terminal) together with its ground truth: which devices
// exist and which findings a correct analysis must, or must not, report.
// It feeds `cargowatch demo`, tests and benchmarks.
//
// The capture is built packet by packet (Ethernet, IPv4, TCP/UDP with
// correct lengths, checksums, sequence numbers and handshakes) and streamed
// in timestamp order, so memory stays flat whatever the size.
package sim

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/cargowatch/cargowatch/internal/minheap"
)

// Config sets what to simulate. The zero value is the demo.
type Config struct {
	Seed     int64         // deterministic output for a seed
	Start    time.Time     // capture start (default 2026-03-02T06:00:00Z)
	Duration time.Duration // default 2h of simulated time
	// Scale multiplies background volume (office browsing, PLC polling,
	// EDI); 1 = demo size (a few MB per 2 h), 0 means 1.
	Scale float64
}

// Limits on Config: beyond them the capture would not fit a disk anyway.
const (
	maxDuration = 31 * 24 * time.Hour
	maxScale    = 10000
	minScale    = 0.001 // below, activity gaps overflow the simulated time
)

// DefaultStart is the capture start when Config.Start is zero.
var DefaultStart = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// Truth is the ground truth of a simulated capture.
type Truth struct {
	Home    string     `json:"home"`    // ISO country of the hub
	Network string     `json:"network"` // the hub's address range
	Devices []Device   `json:"devices"`
	Expect  []Expected `json:"expect"`
}

// Device is one local host.
type Device struct {
	Name  string `json:"name"`
	IP    string `json:"ip"`
	MAC   string `json:"mac"`
	Role  string `json:"role"`
	Zone  string `json:"zone"`
	Owner string `json:"owner"`
}

// Expected is a finding a correct analysis reports (Kind as in DESIGN.md)
// or, with Kind "none", traffic that must not produce any finding.
type Expected struct {
	Kind string `json:"kind"`
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Note string `json:"note"`
}

// KindNone marks traffic that must not produce a finding.
const KindNone = "none"

func (c Config) withDefaults() (Config, error) {
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Hour
	}
	if c.Scale == 0 {
		c.Scale = 1
	}
	switch {
	case c.Duration < 0 || c.Duration > maxDuration:
		return c, fmt.Errorf("sim: duration %v: want 0 < d <= %v", c.Duration, maxDuration)
	case math.IsNaN(c.Scale) || c.Scale < minScale || c.Scale > maxScale:
		return c, fmt.Errorf("sim: scale %v: want %v <= scale <= %d", c.Scale, minScale, maxScale)
	case c.Start.Unix() < 0 || c.Start.Add(c.Duration).Unix() > math.MaxUint32-24*3600:
		return c, fmt.Errorf("sim: start %v: outside what a classic pcap timestamp holds", c.Start)
	}
	return c, nil
}

// Generate writes a classic pcap (Ethernet link type, microsecond
// timestamps) of the simulated hub to w and returns its ground truth.
func Generate(w io.Writer, cfg Config) (*Truth, error) {
	g, err := newGen(w, cfg)
	if err != nil {
		return nil, err
	}
	if err := g.run(); err != nil {
		return nil, err
	}
	return g.truth(), nil
}

// WriteDir writes hub.pcap, truth.json and assets.csv (name, address,
// role, zone, owner) into dir, creating it if needed.
func WriteDir(dir string, cfg Config) (pcapPath string, truth *Truth, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("sim: %w", err)
	}
	pcapPath = filepath.Join(dir, "hub.pcap")
	f, err := os.Create(pcapPath)
	if err != nil {
		return "", nil, fmt.Errorf("sim: %w", err)
	}
	truth, err = Generate(f, cfg)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sim: %s: %w", pcapPath, cerr)
	}
	if err != nil {
		return "", nil, err
	}
	js, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return "", nil, fmt.Errorf("sim: truth: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "truth.json"), append(js, '\n'), 0o644); err != nil {
		return "", nil, fmt.Errorf("sim: %w", err)
	}
	if err := writeAssets(filepath.Join(dir, "assets.csv"), truth.Devices); err != nil {
		return "", nil, err
	}
	return pcapPath, truth, nil
}

func writeAssets(path string, devs []Device) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"name", "address", "role", "zone", "owner"})
	for _, d := range devs {
		cw.Write([]string{d.Name, d.IP, d.Role, d.Zone, d.Owner})
	}
	cw.Flush()
	err = errors.Join(cw.Error(), f.Close())
	if err != nil {
		return fmt.Errorf("sim: %s: %w", path, err)
	}
	return nil
}

func newGen(w io.Writer, cfg Config) (*gen, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &gen{
		cfg:      cfg,
		start:    cfg.Start.UnixMicro(),
		end:      cfg.Start.Add(cfg.Duration).UnixMicro(),
		scale:    cfg.Scale,
		net:      newNetwork(),
		dnsCache: map[string]int64{},
		flows:    minheap.New(flowLess),
		actors:   minheap.New(actorLess),
	}
	g.rootRand = rand.New(rand.NewPCG(uint64(cfg.Seed), 1))
	g.pw = newPcapWriter(w)
	g.setup()
	return g, nil
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func (g *gen) truth() *Truth {
	t := &Truth{Home: homeCountry, Network: homeNetwork}
	for _, h := range g.net.devices {
		t.Devices = append(t.Devices, Device{
			Name: h.name, IP: ipString(h.ip), MAC: macString(h.mac),
			Role: h.role, Zone: h.zone, Owner: h.owner,
		})
	}
	t.Expect = append(t.Expect, g.expect...)
	for i := range t.Expect {
		if f, ok := g.notes[i]; ok {
			t.Expect[i].Note = f()
		}
	}
	return t
}
