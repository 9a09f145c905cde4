package sim

import (
	"bytes"
	"compress/gzip"
	"encoding/base32"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// setup creates the hub's devices, the activities that drive traffic and
// the expectations of the ground truth.
func (g *gen) setup() {
	n := g.net
	dns := n.add("dns-01", "10.20.0.53", ouiDell, "dns-resolver", "it-servers", "IT Operations", 64)
	tos := n.add("tos-01", "10.20.0.10", ouiDell, "tos", "it-servers", "Terminal Operations", 64)
	wms := n.add("wms-01", "10.20.0.11", ouiDell, "wms", "it-servers", "Warehouse Logistics", 64)
	cgw := n.add("customs-gw-01", "10.20.1.20", ouiDell, "customs-gateway", "dmz", "Customs Office", 64)
	// S7 PLCs answer with TTL 30, Schneider's with 64.
	plc := []*host{
		n.add("crane-plc-01", "10.20.32.11", ouiSiemens, "crane-plc", "ot-crane", "Crane Maintenance", 30),
		n.add("crane-plc-02", "10.20.32.12", ouiSiemens, "crane-plc", "ot-crane", "Crane Maintenance", 30),
		n.add("crane-plc-03", "10.20.32.13", ouiSchneider, "crane-plc", "ot-crane", "Crane Maintenance", 64),
		n.add("crane-plc-04", "10.20.32.14", ouiSchneider, "crane-plc", "ot-crane", "Crane Maintenance", 64),
	}
	hmi := []*host{
		n.add("crane-hmi-01", "10.20.32.21", ouiBeckhoff, "crane-hmi", "ot-crane", "Crane Maintenance", 128),
		n.add("crane-hmi-02", "10.20.32.22", ouiBeckhoff, "crane-hmi", "ot-crane", "Crane Maintenance", 128),
	}
	modem := n.add("crane-modem-01", "10.20.32.50", ouiSierra, "crane-modem", "ot-crane", "Crane Maintenance", 64)
	var scanners []*host
	for i := 1; i <= 8; i++ {
		scanners = append(scanners, n.add(fmt.Sprintf("scanner-%02d", i), fmt.Sprintf("10.20.40.%d", 100+i),
			ouiZebra, "scanner", "ot-scanner", "Yard Operations", 64))
	}
	users := int(math.Round(6 * g.scale))
	users = max(1, min(users, maxOffice))
	rate := 6 * g.scale / float64(users) // per-user activity factor beyond the PC cap
	var office []*host
	for i := 0; i < users; i++ {
		oui := ouiDellPC
		if i%3 == 2 {
			oui = ouiHP
		}
		office = append(office, n.add(fmt.Sprintf("office-pc-%03d", i+1), officeIP(i), oui, "office", "office", "Office IT", 128))
	}
	g.servers = serverSet{dns: dns, tos: tos, wms: wms}
	dur := g.end - g.start
	r := g.rootRand

	// Office users: browsing outside, working in the TOS and WMS. Their
	// start times come from their own generator so that the scenario's
	// draws below do not depend on the scale.
	ro := rand.New(rand.NewPCG(uint64(g.cfg.Seed), 3))
	for _, pc := range office {
		pc := pc
		g.addActor(g.start+ro.Int64N(2*minute), func(a *actor) { g.officeUser(a, pc, rate) })
	}
	// The TOS feeds the WMS over its API.
	g.addActor(g.start+r.Int64N(30*second), func(a *actor) {
		ex := make([]tlsExchange, 1+a.r.IntN(3))
		for i := range ex {
			ex[i] = tlsExchange{req: 500 + a.r.IntN(2500), resp: 500 + a.r.IntN(3500), gap: jitter(a.r, 1*msec, 50*msec), respGap: jitter(a.r, 2*msec, 30*msec)}
		}
		g.tcp(a.r, tos, wms, 443, a.t, tlsScript(a.r, "wms-01."+localDomain, helloBrowser, ex), connOK, closeOrigFIN)
		a.t += expDelay(a.r, float64(90*second)/g.scale)
	})

	// HMIs poll the crane PLCs: S7comm to the Siemens ones, Modbus/TCP to
	// the Schneider ones, each at a fixed 1-5 s period.
	pairs := []struct {
		hmi, plc *host
		s7       bool
	}{{hmi[0], plc[0], true}, {hmi[1], plc[1], true}, {hmi[0], plc[2], false}, {hmi[1], plc[3], false}}
	for _, p := range pairs {
		p := p
		period := int64(1+r.IntN(5)) * second
		proto := "Modbus/TCP"
		if p.s7 {
			proto = "S7comm"
		}
		g.expectNote(KindNone, p.hmi, ipString(p.plc.ip), func() string {
			return fmt.Sprintf("%s polling every %ds inside ot-crane (plant-internal)", proto, period/second)
		})
		g.addActor(g.start+r.Int64N(period), func(a *actor) { g.poller(a, p.hmi, p.plc, p.s7, period) })
	}

	// The crane modem beacons to the vendor cloud in China.
	tel := n.remoteHost(siteTelemetry)
	g.addActor(g.start+jitter(r, 5*second, 60*second), func(a *actor) { g.beacon(a, modem, tel) })
	beaconNote := func() string {
		return fmt.Sprintf("TLS to %s every 60s +-30%% jitter: %d connections, %d missed beats", siteTelemetry.name, len(g.st.beats), g.st.missedBeats)
	}
	g.expectNote(cw.KindBeacon, modem, siteTelemetry.ip, beaconNote)
	g.expectNote(cw.KindJurisdiction, modem, siteTelemetry.ip, func() string { return "Alibaba Cloud Hangzhou, CN" })
	g.expectNote(cw.KindOTEgress, modem, siteTelemetry.ip, func() string { return "ot-crane modem talks directly to a cloud abroad" })

	// crane-plc-03 reaches the vendor's remote-maintenance server.
	rm := n.remoteHost(siteRemoteMaint)
	modes := []connectMode{connOK, connNoAnswer, connOK, connRefused}
	for i, at := range []float64{0.12, 0.37, 0.61, 0.83} {
		cm := modes[i]
		g.addActor(g.start+int64(at*float64(dur))+r.Int64N(min(dur/20, minute)+1), func(a *actor) {
			g.remoteMaint(a, plc[2], rm, cm)
			a.t = done
		})
	}
	g.expectNote(cw.KindOTEgress, plc[2], siteRemoteMaint.ip, func() string {
		return "4 TCP connection attempts to port 443 (2 TLS sessions, 1 unanswered SYN, 1 refused)"
	})
	g.expectNote(cw.KindJurisdiction, plc[2], siteRemoteMaint.ip, func() string { return "China Telecom, CN" })

	// The WMS uploads bay plans to a Chinese-operated cloud in Frankfurt.
	bay := n.remoteHost(siteBayplanCloud)
	g.addActor(g.start+jitter(r, 2*minute, 6*minute), func(a *actor) { g.bayplanUpload(a, wms, bay) })
	g.expectNote(cw.KindJurisdiction, wms, siteBayplanCloud.ip, func() string {
		return "Alibaba Cloud eu-central-1 (AS45102): sits in DE, operator controlled from CN"
	})
	g.expectNote(cw.KindCargoData, wms, siteBayplanCloud.ip, func() string {
		return fmt.Sprintf("%d EDIFACT BAPLIE bay plans over plain HTTP POST (one gzip-encoded), %d container numbers", g.st.bayplans, g.st.containers)
	})

	// Customs declarations go to German customs: legitimate.
	cust := n.remoteHost(siteCustoms)
	g.addActor(g.start+r.Int64N(3*minute), func(a *actor) { g.customs(a, cgw, cust) })
	g.expectNote(KindNone, cgw, siteCustoms.ip, func() string {
		return "EDIFACT CUSCAR/CUSDEC over TLS to German customs (ATLAS) in DE: required by law"
	})

	// Yard scanners report gate and stack moves to the WMS.
	for _, sc := range scanners {
		sc := sc
		g.addActor(g.start+r.Int64N(90*second), func(a *actor) { g.scanEvent(a, sc, wms) })
	}
	g.expectNote(KindNone, scanners[0], ipString(wms.ip), func() string {
		return "scanners post container moves (JSON over HTTP :8080) to the WMS: internal cargo data"
	})

	// scanner-07 tunnels data out through DNS, bypassing the hub resolver.
	res := n.remoteHost(siteTunnelResolver)
	g.addActor(g.start+jitter(r, 3*minute, 10*minute), func(a *actor) { g.tunnel(a, scanners[6], res) })
	g.expectNote(cw.KindDNSTunnel, scanners[6], siteTunnelResolver.ip, func() string {
		return fmt.Sprintf("%d TXT queries with unique base32 labels under x.cargo-sync-cdn.net, sent straight to %s", g.st.tunnelQueries, siteTunnelResolver.ip)
	})
	g.expectNote(cw.KindOTEgress, scanners[6], siteTunnelResolver.ip, func() string { return "ot-scanner device queries an outside resolver directly" })

	// Servers keep time with PTB.
	ntp := []*host{n.remoteHost(siteNTP1), n.remoteHost(siteNTP2)}
	for i, h := range []*host{dns, tos, wms, cgw} {
		h, srv := h, ntp[i%2]
		g.addActor(g.start+r.Int64N(1024*second), func(a *actor) { g.ntp(a, h, srv) })
	}
	g.expectNote(KindNone, tos, siteNTP2.ip, func() string { return "NTP to PTB, DE" })

	// One office user backs a project folder up to a German cloud.
	bk := n.remoteHost(siteBackup)
	pc := office[min(2, len(office)-1)]
	g.addActor(g.start+int64(0.4*float64(dur)), func(a *actor) {
		t := g.resolve(a.r, pc, siteBackup, a.t)
		size := 1_500_000 + a.r.IntN(1_000_000)
		ex := []tlsExchange{{req: 900, resp: 200, respGap: 20 * msec}, {req: size, resp: 400, gap: 50 * msec, respGap: 80 * msec}}
		g.tcp(a.r, pc, bk, 443, t, tlsScript(a.r, siteBackup.name, helloBrowser, ex), connOK, closeOrigFIN)
		a.t = done
	})
	g.expectNote(KindNone, pc, siteBackup.ip, func() string {
		return "legitimate large upload (1.5-2.5 MB) to Open Telekom Cloud, DE"
	})
}

type serverSet struct{ dns, tos, wms *host }

// expectNote adds an expectation whose note is written after the run,
// when the counts are known.
func (g *gen) expectNote(kind string, src *host, dst string, note func() string) {
	if g.notes == nil {
		g.notes = map[int]func() string{}
	}
	g.notes[len(g.expect)] = note
	g.expect = append(g.expect, Expected{Kind: kind, Src: ipString(src.ip), Dst: dst})
}

// expDelay draws an exponential waiting time with the given mean (µs),
// at least a second so that activities do not pile up.
func expDelay(r *rand.Rand, mean float64) int64 {
	return max(second, int64(r.ExpFloat64()*mean))
}

// pickSite draws a browsing destination by weight.
func pickSite(r *rand.Rand) site {
	total := 0
	for _, s := range browseSites {
		total += s.weight
	}
	x := r.IntN(total)
	for _, s := range browseSites {
		if x < s.weight {
			return s
		}
		x -= s.weight
	}
	return browseSites[0]
}

// closeMix picks how a web connection ends.
func closeMix(r *rand.Rand) closeMode {
	switch x := r.IntN(100); {
	case x < 70:
		return closeOrigFIN
	case x < 90:
		return closeRespFIN
	case x < 97:
		return closeOrigRST
	}
	return closeRespRST
}

// webSize draws a response size: log-normal, median 8 KB, capped.
func webSize(r *rand.Rand) int {
	v := math.Exp(math.Log(8000) + 1.1*r.NormFloat64())
	return int(min(max(v, 200), 1.5e6))
}

func (g *gen) officeUser(a *actor, pc *host, rate float64) {
	r := a.r
	switch x := r.Float64(); {
	case x < 0.72:
		s := pickSite(r)
		t := g.resolve(r, pc, s, a.t)
		ex := make([]tlsExchange, 1+r.IntN(4))
		for i := range ex {
			ex[i] = tlsExchange{req: 300 + r.IntN(900), resp: webSize(r), gap: jitter(r, 1*msec, 8*second), respGap: jitter(r, 5*msec, 80*msec)}
		}
		ex[0].gap = 0
		g.tcp(r, pc, g.net.remoteHost(s), 443, t, tlsScript(r, s.name, helloBrowser, ex), connOK, closeMix(r))
	default:
		srv := g.servers.tos
		if x > 0.86 {
			srv = g.servers.wms
		}
		name := srv.name + "." + localDomain
		t := g.resolve(r, pc, site{name: name, ip: ipString(srv.ip)}, a.t)
		ex := make([]tlsExchange, 2+r.IntN(4))
		for i := range ex {
			ex[i] = tlsExchange{req: 400 + r.IntN(1500), resp: 1000 + r.IntN(15000), gap: jitter(r, 100*msec, 5*second), respGap: jitter(r, 3*msec, 40*msec)}
		}
		g.tcp(r, pc, srv, 443, t, tlsScript(r, name, helloBrowser, ex), connOK, closeOrigFIN)
	}
	a.t += expDelay(r, float64(360*second)/rate)
}

// resolve sends the A query for s from client to the hub resolver (which
// forwards misses upstream) and returns when the client can connect.
func (g *gen) resolve(r *rand.Rand, client *host, s site, t int64) int64 {
	dns := g.servers.dns
	q := dnsQuery(uint16(r.Uint32()), s.name, dnsA)
	ans := t + 2*dns.dist + jitter(r, 50, 300)
	ttl := uint32(300)
	if !strings.HasSuffix(s.name, "."+localDomain) {
		exp, ok := g.dnsCache[s.name]
		if ok && exp > t {
			ttl = uint32((exp - t) / second)
		} else {
			if len(g.dnsCache) >= 5000 {
				clear(g.dnsCache) // bounded: the resolver forgets, as under memory pressure
				g.st.cacheResets++
			}
			up := g.net.remoteHost(siteUpstreamDNS)
			uq := dnsQuery(uint16(r.Uint32()), s.name, dnsA)
			t1 := t + jitter(r, 100, 400)
			t2 := t1 + 2*up.dist + jitter(r, 200, 20*msec)
			ua := dnsResponse(uq, 0, []dnsAnswer{{dnsA, ttl, addrBytes(s.ip)}})
			g.udp(dns, up, randPort(r), 53, udpMsg{t1, false, uq}, udpMsg{t2, true, ua})
			g.dnsCache[s.name] = t + int64(ttl)*second
			ans = t2 + jitter(r, 50, 300)
		}
	}
	resp := dnsResponse(q, 0, []dnsAnswer{{dnsA, ttl, addrBytes(s.ip)}})
	g.udp(client, dns, client.ephemeral(), 53, udpMsg{t, false, q}, udpMsg{ans, true, resp})
	return ans + jitter(r, 100, 2*msec)
}

func addrBytes(ip string) []byte { a := addr4(ip); return a[:] }

// poller opens one polling connection from hmi to plc, kept for 15-40
// minutes, then reconnects (HMIs recycle sessions after a timeout or a
// project download).
func (g *gen) poller(a *actor, hmi, plc *host, s7 bool, period int64) {
	r := a.r
	life := jitter(r, 15*minute, 40*minute)
	polls := int(min(life, g.end-a.t) / period)
	polls = max(polls, 1)
	reads := max(1, int(math.Round(g.scale)))
	var sc script
	port := uint16(502)
	if s7 {
		sc = s7Script(r, polls, reads, period)
		port = 102
	} else {
		sc = modbusScript(r, polls, reads, period)
	}
	g.tcp(r, hmi, plc, port, a.t, sc, connOK, closeOrigFIN)
	a.t += int64(polls)*(period+period/50) + jitter(r, 2*second, 10*second)
}

// pollGap is the wait before the next request: the period for the first
// read of a cycle, a few milliseconds between reads of one cycle.
func pollGap(r *rand.Rand, i, j int, period int64) int64 {
	switch {
	case i == 0 && j == 0:
		return jitter(r, 1*msec, 30*msec)
	case j == 0:
		return period + jitter(r, -period/100, period/100+1)
	}
	return jitter(r, 500, 3*msec)
}

func modbusScript(r *rand.Rand, polls, reads int, period int64) script {
	tid := uint16(r.IntN(4096))
	unit := byte(1)
	type block struct {
		addr uint16
		regs []uint16
	}
	blocks := make([]block, reads)
	for j := range blocks {
		blocks[j] = block{addr: uint16(j * 100 % 60000), regs: make([]uint16, 8+r.IntN(57))}
		for k := range blocks[j].regs {
			blocks[j].regs[k] = uint16(r.IntN(4000))
		}
	}
	i, j, resp := 0, 0, false
	return func() (step, bool) {
		if i >= polls {
			return step{}, false
		}
		b := &blocks[j]
		if !resp {
			resp = true
			return step{data: bytesStream(modbusReadReq(tid, unit, b.addr, uint16(len(b.regs)))), gap: pollGap(r, i, j, period)}, true
		}
		// Crane sensors drift slowly: load cell, trolley position, wind.
		for k := range b.regs {
			b.regs[k] = uint16(int(b.regs[k]) + r.IntN(5) - 2)
		}
		st := step{fromResp: true, data: bytesStream(modbusReadResp(tid, unit, b.regs)), gap: jitter(r, 300, 3*msec)}
		resp = false
		tid++
		if j++; j == reads {
			j = 0
			i++
		}
		return st, true
	}
}

func s7Script(r *rand.Rand, polls, reads int, period int64) script {
	ref := uint16(r.IntN(1000) + 1)
	items := make([][]s7Item, reads)
	for j := range items {
		items[j] = make([]s7Item, 1+r.IntN(3))
		for k := range items[j] {
			items[j][k] = s7Item{db: uint16(1 + j*4 + k), start: 2 * r.IntN(50), n: 2 + r.IntN(60)}
		}
	}
	stage, i, j, resp := 0, 0, 0, false
	return func() (step, bool) {
		switch stage {
		case 0:
			stage++
			return step{data: bytesStream(cotpConnect(false))}, true
		case 1:
			stage++
			return step{fromResp: true, data: bytesStream(cotpConnect(true)), gap: jitter(r, 300, 2*msec)}, true
		case 2:
			stage++
			return step{data: bytesStream(s7Setup(false, ref)), gap: jitter(r, 100, 1*msec)}, true
		case 3:
			stage++
			return step{fromResp: true, data: bytesStream(s7Setup(true, ref)), gap: jitter(r, 300, 2*msec)}, true
		}
		if i >= polls {
			return step{}, false
		}
		if !resp {
			resp = true
			ref++
			return step{data: bytesStream(s7ReadReq(ref, items[j])), gap: pollGap(r, i, j, period)}, true
		}
		st := step{fromResp: true, data: bytesStream(s7ReadResp(r, ref, items[j])), gap: jitter(r, 500, 4*msec)}
		resp = false
		if j++; j == reads {
			j = 0
			i++
		}
		return st, true
	}
}

// beacon is the crane modem's check-in: every 60 s with ±30 % uniform
// jitter and a few missed beats.
func (g *gen) beacon(a *actor, modem, tel *host) {
	r := a.r
	if g.missed == nil {
		// A few missed beats (radio link down), away from the ends so
		// that they show as double intervals.
		g.missed = map[int]bool{}
		if n := int((g.end - a.t) / (60 * second)); n >= 12 {
			for k := 2 + r.IntN(3); len(g.missed) < k; {
				g.missed[3+r.IntN(n-6)] = true
			}
		}
	}
	g.beatIdx++
	if g.missed[g.beatIdx] {
		g.st.missedBeats++
	} else {
		t := a.t
		if g.modemDNS <= t {
			t = g.resolve(r, modem, siteTelemetry, t)
			g.modemDNS = t + 300*second
		}
		g.st.beats = append(g.st.beats, t)
		ex := []tlsExchange{{req: 600 + r.IntN(800), resp: 100 + r.IntN(200), respGap: jitter(r, 10*msec, 60*msec)}}
		g.tcp(r, modem, tel, 443, t, tlsScript(r, siteTelemetry.name, helloEmbedded, ex), connOK, closeOrigFIN)
	}
	a.t += int64(float64(60*second) * (0.7 + 0.6*r.Float64()))
}

func (g *gen) remoteMaint(a *actor, plc, rm *host, cm connectMode) {
	r := a.r
	ex := make([]tlsExchange, 2+r.IntN(4))
	for i := range ex {
		ex[i] = tlsExchange{req: 200 + r.IntN(1800), resp: 500 + r.IntN(19500), gap: jitter(r, 200*msec, 20*second), respGap: jitter(r, 20*msec, 200*msec)}
	}
	g.tcp(r, plc, rm, 443, a.t, tlsScript(r, siteRemoteMaint.name, helloEmbedded, ex), cm, closeOrigFIN)
}

func (g *gen) bayplanUpload(a *actor, wms, cloud *host) {
	r := a.r
	at := time.UnixMicro(a.t).UTC()
	body, boxes := bayplan(r, at, 1000+g.st.bayplans, 20+r.IntN(41))
	g.st.bayplans++
	g.st.containers += len(boxes)
	payload := []byte(body)
	enc := ""
	if g.st.bayplans == 2 {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(payload)
		zw.Close()
		payload = buf.Bytes()
		enc = "Content-Encoding: gzip\r\n"
	}
	req := fmt.Sprintf("POST /api/v2/bayplan/upload HTTP/1.1\r\nHost: %s\r\nUser-Agent: WMS-EDI-Agent/3.2 (Elbkai)\r\n"+
		"Content-Type: application/edifact\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n", siteBayplanCloud.name, enc, len(payload))
	js := fmt.Sprintf(`{"status":"accepted","id":"bp-%08x","containers":%d}`, r.Uint32(), len(boxes))
	resp := fmt.Sprintf("HTTP/1.1 201 Created\r\nServer: Tengine\r\nDate: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		at.Format(http1Date), len(js), js)
	t := g.resolve(r, wms, siteBayplanCloud, a.t)
	sc := steps(
		step{data: newConcat(bytesStream(req), bytesStream(payload))},
		step{fromResp: true, data: bytesStream(resp), gap: jitter(r, 20*msec, 120*msec)},
	)
	g.tcp(r, wms, cloud, 80, t, sc, connOK, closeRespFIN)
	a.t += jitter(r, 12*minute, 25*minute)
}

const http1Date = "Mon, 02 Jan 2006 15:04:05 GMT"

func (g *gen) customs(a *actor, cgw, cust *host) {
	r := a.r
	t := g.resolve(r, cgw, siteCustoms, a.t)
	ex := []tlsExchange{{req: 2400 + r.IntN(6000), resp: 300 + r.IntN(600), respGap: jitter(r, 50*msec, 400*msec)}}
	g.tcp(r, cgw, cust, 443, t, tlsScript(r, siteCustoms.name, helloBrowser, ex), connOK, closeOrigFIN)
	a.t += expDelay(r, float64(6*minute)/g.scale)
}

var scanEvents = []string{"gate-in", "gate-out", "stack", "unstack", "load", "discharge", "seal-check"}

func (g *gen) scanEvent(a *actor, sc, wms *host) {
	r := a.r
	at := time.UnixMicro(a.t).UTC()
	js := fmt.Sprintf(`{"device":"%s","ts":"%s","container":"%s","event":"%s","block":"%c%02d","seal":"%07d"}`,
		sc.name, at.Format(time.RFC3339), newContainer(r), scanEvents[r.IntN(len(scanEvents))], 'A'+rune(r.IntN(8)), r.IntN(40), r.IntN(10000000))
	req := fmt.Sprintf("POST /scan/v1/events HTTP/1.1\r\nHost: wms-01.%s:8080\r\nUser-Agent: ZebraScan/5.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		localDomain, len(js), js)
	resp := "HTTP/1.1 204 No Content\r\nServer: wms-api\r\nConnection: close\r\n\r\n"
	g.tcp(r, sc, wms, 8080, a.t, steps(
		step{data: bytesStream(req)},
		step{fromResp: true, data: bytesStream(resp), gap: jitter(r, 2*msec, 25*msec)},
	), connOK, closeRespFIN)
	a.t += int64(float64(jitter(r, 45*second, 180*second)) / g.scale)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// tunnel sends one query of scanner-07's DNS tunnel per call: bursts of
// 80-250 queries a fraction of a second apart, minutes of quiet between.
func (g *gen) tunnel(a *actor, sc, res *host) {
	r := a.r
	if g.tunnelLeft == 0 {
		g.tunnelLeft = 80 + r.IntN(171)
	}
	g.tunnelSeq++
	// What leaves: the scanner's move log, chunked.
	rec := fmt.Sprintf("%s;%s;DEHAM;%d;%c%02d;%07d;%s", newContainer(r), scanEvents[r.IntN(len(scanEvents))], a.t/second,
		'A'+rune(r.IntN(8)), r.IntN(40), r.IntN(10000000), vessels[r.IntN(len(vessels))].name)
	enc := strings.ToLower(b32.EncodeToString([]byte(rec)))
	var labels []string
	for len(enc) > 0 {
		n := min(len(enc), 60)
		labels = append(labels, enc[:n])
		enc = enc[n:]
	}
	name := fmt.Sprintf("%s.%04x.x.cargo-sync-cdn.net", strings.Join(labels, "."), g.tunnelSeq&0xffff)
	q := dnsQuery(uint16(r.Uint32()), name, dnsTXT)
	reply := strings.ToLower(b32.EncodeToString(randBytes(r, 8+r.IntN(40))))
	resp := dnsResponse(q, 0, []dnsAnswer{{dnsTXT, 0, txtData(reply)}})
	t2 := a.t + 2*res.dist + jitter(r, 5*msec, 80*msec)
	g.udp(sc, res, randPort(r), 53, udpMsg{a.t, false, q}, udpMsg{t2, true, resp})
	g.st.tunnelQueries++
	g.tunnelLeft--
	if g.tunnelLeft == 0 {
		a.t += jitter(r, 8*minute, 20*minute)
	} else {
		a.t += jitter(r, 150*msec, 1500*msec)
	}
}

func (g *gen) ntp(a *actor, h, srv *host) {
	r := a.r
	c := ntpClient(a.t)
	t2 := a.t + 2*srv.dist + jitter(r, 100, 2*msec)
	s := ntpServer(c, t2-srv.dist-40, t2-srv.dist)
	g.udp(h, srv, 123, 123, udpMsg{a.t, false, c}, udpMsg{t2, true, s})
	a.t += 1024*second + jitter(r, -5*second, 5*second)
}

// randPort draws a randomised source port (RFC 6056), avoiding the range
// traceroute probes use so that dissectors do not mistake DNS for one.
func randPort(r *rand.Rand) uint16 {
	for {
		p := uint16(1024 + r.IntN(64511))
		if p < 33434 || p > 33534 {
			return p
		}
	}
}
