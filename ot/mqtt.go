package ot

// MQTT (3.1, 3.1.1, 5): a fixed header (packet type in the high nibble,
// flags) and a variable-length "remaining length" of 1 to 4 bytes.
// Identification is dissect.Service's (a CONNECT with the protocol name);
// this parser counts the packets that follow and reads the client id.

func init() {
	register(&proto{name: MQTT, hdr: 2, frameLen: mqttFrameLen, pdu: mqttPDU})
}

func mqttFrameLen(b []byte) int {
	typ := b[0] >> 4
	if typ == 0 {
		return -1
	}
	n, mul := 0, 1
	for i := 1; i < 5; i++ {
		if i >= len(b) {
			return 0
		}
		n += int(b[i]&0x7f) * mul
		if b[i]&0x80 == 0 {
			return i + 1 + n
		}
		mul <<= 7
	}
	return -1
}

var mqttNames = [...]string{
	"reserved", "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp",
	"subscribe", "suback", "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth",
}

func mqttPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	typ := b[0] >> 4
	switch typ {
	case 1:
		s.request(fromOrig)
		mqttConnect(s, b)
	case 2, 9, 11, 13:
		s.serverSide(fromOrig)
	case 8, 10, 12:
		s.request(fromOrig)
	}
	// Publishes go both ways (client to broker and broker to
	// subscribers); the name is counted, not taken as a write, because a
	// topic says nothing standard about what it changes.
	s.op(mqttNames[typ], false, false)
	return true
}

// mqttConnect reads the client identifier: after the protocol name,
// level, flags and keep-alive (and MQTT 5 properties).
func mqttConnect(s *Session, b []byte) {
	i := 1
	for i < len(b) && i < 5 && b[i]&0x80 != 0 {
		i++
	}
	i++
	if i+2 > len(b) {
		return
	}
	nl := be16(b[i:])
	i += 2 + nl
	if i+4 > len(b) {
		return
	}
	level := b[i]
	i += 4 // level, flags, keep alive
	if level == 5 {
		// Properties length (varint) and properties.
		n, mul, j := 0, 1, i
		for ; j < len(b) && j < i+4; j++ {
			n += int(b[j]&0x7f) * mul
			mul <<= 7
			if b[j]&0x80 == 0 {
				break
			}
		}
		i = j + 1 + n
	}
	if i+2 > len(b) {
		return
	}
	l := be16(b[i:])
	if i+2+l > len(b) || l == 0 {
		return
	}
	s.setDevice("mqtt-client " + string(b[i+2:i+2+l]))
}
