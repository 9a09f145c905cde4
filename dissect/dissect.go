// Package dissect parses the application-layer messages that cargowatch
// records on a Conn (DNS, TLS ClientHello/ServerHello, HTTP/1.x) and
// identifies a flow's service from its payload rather than its port.
//
// Every function takes untrusted bytes, keeps no state (so the flow table
// may call them from many goroutines), bounds what it returns, and reports
// bad input as an error, never a panic. The parsers run on the first
// packets of every flow, so they avoid regexps and allocate little: the
// strings they return are the only heap allocations on the common path.
//
// Errors can be told apart with errors.Is: ErrShort (wait for more bytes),
// ErrNotTLS / ErrNotHTTP (wrong protocol, give up), ErrMalformed.
package dissect
