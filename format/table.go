package format

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	cw "github.com/cargowatch/cargowatch"
)

// JurisdictionTotal is one row of the "where our data goes" summary.
type JurisdictionTotal struct {
	Jurisdiction string // who controls the operator
	Country      string // where the server sits
	BytesOut     int64
	BytesIn      int64
	Conns        int64
	Hosts        int64
}

// FindingsTable writes findings grouped by severity, most severe first,
// then the totals per jurisdiction. Findings must already be sorted by the
// caller's ranking within a severity.
func FindingsTable(w io.Writer, fs []cw.Finding, totals []JurisdictionTotal) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(fs) == 0 {
		fmt.Fprintln(tw, "No findings.")
	}
	for sev := cw.Critical; sev >= cw.Info; sev-- {
		var group []*cw.Finding
		for i := range fs {
			if fs[i].Severity == sev {
				group = append(group, &fs[i])
			}
		}
		if len(group) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s (%d)\n", strings.ToUpper(sev.String()), len(group))
		fmt.Fprintln(tw, "  KIND\tSOURCE\tDESTINATION\tSERVER/LAW\tOUT\tIN\tCOUNT\tSCORE\tSUMMARY")
		for _, f := range group {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%s\n",
				f.Kind, srcLabel(f), dstLabel(f), where(&f.Dst),
				Bytes(f.BytesOut), Bytes(f.BytesIn), f.Count, f.Score, f.Summary)
		}
		fmt.Fprintln(tw)
	}
	if len(totals) > 0 {
		sort.SliceStable(totals, func(i, j int) bool { return totals[i].BytesOut > totals[j].BytesOut })
		fmt.Fprintln(tw, "WHERE OUR DATA GOES (controlling jurisdiction / server country)")
		fmt.Fprintln(tw, "  LAW\tSERVER\tOUT\tIN\tCONNS\tLOCAL HOSTS")
		for _, t := range totals {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\n", orDash(t.Jurisdiction), orDash(t.Country),
				Bytes(t.BytesOut), Bytes(t.BytesIn), t.Conns, t.Hosts)
		}
	}
	return tw.Flush()
}

// ConnTable streams conns as table rows. Columns have fixed widths (wide
// enough for IPv4 endpoints; longer values push the row, not the header),
// because a capture's conns arrive for minutes and cannot be measured first.
type ConnTable struct {
	w      *bufio.Writer
	header bool
}

// NewConnTable returns a table writer on w; call Flush at the end.
func NewConnTable(w io.Writer) *ConnTable { return &ConnTable{w: bufio.NewWriterSize(w, 64<<10)} }

const connRow = "%-19s  %-18s  %-21s  %-21s  %-5s  %-8s  %-6s  %9s  %9s  %-28s  %s\n"

// Write adds one row (and the header before the first).
func (t *ConnTable) Write(c *cw.Conn) error {
	if !t.header {
		t.header = true
		fmt.Fprintf(t.w, connRow, "TIME", "UID", "ORIG", "RESP", "PROTO", "SERVICE", "STATE", "OUT", "IN", "NAME", "SERVER/LAW")
	}
	_, err := fmt.Fprintf(t.w, connRow,
		c.TS.UTC().Format("2006-01-02 15:04:05"), c.UID,
		connEnd(c.Orig), connEnd(c.Resp), c.Proto, orDash(c.Service), c.State,
		Bytes(c.OrigBytes), Bytes(c.RespBytes), orDash(c.Resp.Name), where(&c.Resp))
	return err
}

// Flush writes what is buffered.
func (t *ConnTable) Flush() error { return t.w.Flush() }

func srcLabel(f *cw.Finding) string {
	s := addrString(f.Src.Addr)
	if f.Src.Asset != nil && f.Src.Asset.Name != "" {
		s = f.Src.Asset.Name + " " + s
	}
	return s
}

func dstLabel(f *cw.Finding) string {
	s := addrString(f.Dst.Addr)
	if f.Dst.Port != 0 {
		s = hostPort(f.Dst)
	}
	switch {
	case f.Dst.Name != "":
		s += " " + f.Dst.Name
	case f.Dst.Org != "":
		s += " " + f.Dst.Org
	}
	return s
}

// connEnd names a side of a conversation; a layer-2 one (PROFINET DCP)
// has an address only when the device announced it, so the MAC stands in.
func connEnd(e cw.Endpoint) string {
	if !e.Addr.IsValid() && e.MAC != "" {
		return e.MAC
	}
	return hostPort(e)
}

func hostPort(e cw.Endpoint) string {
	if !e.Addr.IsValid() {
		return "-"
	}
	if e.Addr.Is6() && !e.Addr.Is4In6() {
		return fmt.Sprintf("[%s]:%d", e.Addr, e.Port)
	}
	return fmt.Sprintf("%s:%d", e.Addr, e.Port)
}

// where shows server country and controlling jurisdiction, "DE/CN" when
// they differ, which is the point of the jurisdiction map.
func where(e *cw.Endpoint) string {
	if e.Local {
		return "local"
	}
	switch {
	case e.Country == "" && e.Jurisdiction == "":
		return "-"
	case e.Jurisdiction == "" || e.Jurisdiction == e.Country:
		return orDash(e.Country)
	default:
		return orDash(e.Country) + "/" + e.Jurisdiction
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Bytes formats a byte count with binary units.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
