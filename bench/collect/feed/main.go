// Command feed sends a NetFlow v9 export stream to a collector at a set
// rate of flow records per second, as a router would (the template again
// every second), and prints what it sent as JSON: the load generator of
// bench/collect/run.sh.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/cargowatch/cargowatch/netflow/nftest"
)

func main() {
	to := flag.String("to", "127.0.0.1:2055", "collector address")
	rate := flag.Float64("rate", 100000, "flow records per second")
	dur := flag.Duration("duration", 5*time.Second, "how long to send")
	per := flag.Int("per", 30, "records per datagram (30 keeps them under 1500 bytes)")
	flag.Parse()
	conn, err := net.Dial("udp", *to)
	if err != nil {
		fmt.Fprintln(os.Stderr, "feed:", err)
		os.Exit(2)
	}
	export := time.Now()
	// One datagram of each record offset, built once: sending must cost
	// the generator little so that the collector is what is measured.
	const variants = 4096
	data := make([][]byte, variants)
	for i := range data {
		data[i] = nftest.DataDatagram(export, i*(*per), *per)
	}
	tmpl := nftest.TemplateDatagram(export)
	send := func(b []byte) {
		if _, err := conn.Write(b); err != nil {
			fmt.Fprintln(os.Stderr, "feed:", err)
			os.Exit(1)
		}
	}
	send(tmpl)
	time.Sleep(50 * time.Millisecond) // the template is learnt before data arrives
	start := time.Now()
	var datagrams, records int64
	lastTmpl := start
	for {
		now := time.Now()
		el := now.Sub(start)
		if el >= *dur {
			break
		}
		if now.Sub(lastTmpl) >= time.Second {
			send(tmpl)
			lastTmpl = now
		}
		due := int64(el.Seconds()**rate) / int64(*per)
		for datagrams < due {
			send(data[datagrams%variants])
			datagrams++
			records += int64(*per)
		}
		time.Sleep(200 * time.Microsecond)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"datagrams": datagrams, "records": records, "seconds": time.Since(start).Seconds(),
	})
}
