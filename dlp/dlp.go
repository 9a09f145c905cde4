// Package dlp finds cargo data in bytes: identifiers (ISO 6346 container
// numbers, IATA air waybills, IMO ship numbers, GS1 SSCCs, IATA ULDs,
// UN/LOCODEs, HS tariff codes, EORI numbers) and the messages that carry
// them (UN/EDIFACT, ANSI X12, IATA Cargo-IMP and Cargo-XML, DCSA and
// ONE Record JSON).
//
// Each recogniser is a cheap prefilter (the scanner only stops at digit
// runs, found eight bytes at a time), a format check, a check digit where
// the identifier has one, invalidators for placeholders, and context:
// keywords in a short window before the value and the message structure
// around it. The confidence it reports (low, medium, high) follows the
// rules in docs/DETECTIONS.md.
//
// Values in Hits are raw; callers mask them with Mask before they reach
// output, logs or a store unless the user asked to reveal them.
package dlp

import (
	cw "github.com/cargowatch/cargowatch"
)

// Identifier types, as written in Hit.Type.
const (
	TypeContainer = "container"
	TypeAWB       = "awb"
	TypeIMO       = "imo"
	TypeSSCC      = "sscc"
	TypeULD       = "uld"
	TypeUNLocode  = "unlocode"
	TypeHS        = "hs"
	TypeEORI      = "eori"
)

// Check-digit statuses and confidences, as written in Hit.
const (
	CheckValid   = "valid"
	CheckInvalid = "invalid"
	CheckNone    = "none"

	Low    = "low"
	Medium = "medium"
	High   = "high"
)

// Message is one classified message found in the input.
type Message struct {
	Type    string // EDIFACT/BAPLIE, X12/315, CARGO-IMP/FWB, CARGO-XML/XFWB, JSON/DCSA, ...
	Version string // D95B, 004010, 17, ... when the header tells
	Offset  int64  // where the message starts
	Length  int64  // bytes up to its trailer (or to the end of input when none was seen)
	// Cargo is false for messages of a known syntax that carry no cargo
	// data (an X12 850 purchase order, an EDIFACT PAORES).
	Cargo  bool
	Counts map[string]int // identifier type -> hits inside the message
}

// ConfidenceRank orders confidences: low 1, medium 2, high 3, else 0.
func ConfidenceRank(c string) int {
	switch c {
	case Low:
		return 1
	case Medium:
		return 2
	case High:
		return 3
	}
	return 0
}

var confNames = [...]string{"", Low, Medium, High}

// Scan finds the hits and messages in b. It is a convenience over Scanner
// for input already in memory; hits come in offset order.
func Scan(b []byte) ([]cw.Hit, []Message) {
	var hits []cw.Hit
	var msgs []Message
	s := NewScanner(Options{
		OnHit:     func(h cw.Hit) { hits = append(hits, h) },
		OnMessage: func(m Message) { msgs = append(msgs, m) },
	})
	s.Write(b)
	s.Close()
	return hits, msgs
}
