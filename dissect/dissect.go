// Package dissect parses the application-layer messages that cargowatch
// records on a Conn (DNS, TLS ClientHello/ServerHello, HTTP/1.x) and
// identifies a flow's service from its payload rather than its port.
// Every function takes untrusted bytes and returns an error, never panics.
package dissect

import cw "github.com/cargowatch/cargowatch"

// DNSMessage parses one DNS message (UDP payload, or one TCP-framed
// message without its 2-byte length prefix). isResponse tells whether it
// is a response (QR bit).
func DNSMessage(b []byte) (msg cw.DNS, isResponse bool, err error) {
	return cw.DNS{}, false, errNotImplemented
}

// ClientHello parses a TLS record stream that begins with a ClientHello
// (it may need more than one TCP segment: pass the first bytes of the
// stream). It returns ErrShort when more bytes are needed.
func ClientHello(b []byte) (*cw.TLS, error) { return nil, errNotImplemented }

// ServerHelloVersion returns the negotiated version ("TLSv12", "TLSv13", ...)
// from the first bytes of the server's stream.
func ServerHelloVersion(b []byte) (string, error) { return "", errNotImplemented }

// HTTPRequests parses the HTTP/1.x requests at the start of a client stream
// (pipelined requests included, at most max).
func HTTPRequests(b []byte, max int) ([]cw.HTTP, error) { return nil, errNotImplemented }

// Service names the protocol of a flow from the first payload bytes of the
// originator (orig) and responder (resp) directions; either may be empty.
// It returns "" when nothing is recognised. Names follow Zeek: "dns",
// "http", "ssl", "ssh", "smtp", "ftp", ... plus OT protocols later.
func Service(proto string, orig, resp []byte) string { return "" }
