package dissect

import "errors"

var (
	// ErrShort means the message is cut and more bytes may complete it.
	ErrShort = errors.New("dissect: message truncated")
	// ErrNotTLS means the bytes do not start a TLS handshake, so waiting
	// for more of the stream will not help.
	ErrNotTLS = errors.New("dissect: not a TLS handshake")
	// ErrNotHTTP means the bytes do not start an HTTP/1.x message.
	ErrNotHTTP = errors.New("dissect: not HTTP/1.x")
	// ErrMalformed means the message has the right shape but its fields
	// contradict each other (lengths past the end, pointer loops, ...).
	ErrMalformed = errors.New("dissect: malformed message")
)
