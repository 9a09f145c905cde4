// Package detect holds the behavioural analyzers, one file per analyzer,
// each a cargowatch.Detector: it observes enriched Conns (endpoints carry
// locality, geography, jurisdiction and asset) and concludes Findings when
// asked. Analyzers read no files, keep bounded state (caps counted when
// hit) and are not safe for concurrent use; the engine feeds each from one
// goroutine. Every score's formula is documented beside the analyzer and in
// docs/DETECTIONS.md.
package detect
