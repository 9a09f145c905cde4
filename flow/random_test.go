package flow

import (
	"math/rand"
	"testing"
)

func TestTableRandomPackets(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		b := make([]byte, r.Intn(300))
		r.Read(b)
		fuzzTable(t, b)
	}
}
