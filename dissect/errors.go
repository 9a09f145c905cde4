package dissect

import "errors"

var (
	// ErrShort means the message is cut and more bytes may complete it.
	ErrShort          = errors.New("dissect: message truncated")
	errNotImplemented = errors.New("dissect: not implemented")
)
