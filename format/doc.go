// Package format renders cargowatch records for people and for other
// tools: Findings and Conns as JSON lines (the contracts of DESIGN.md) and
// as terminal tables. It writes; it never decides what to show.
package format
