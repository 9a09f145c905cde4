package pcap

import (
	"net/netip"
	"time"
)

// Packet is one IP packet after link-layer decoding, decapsulation of
// tunnels and IP fragment reassembly: what the flow table needs and no more.
// Payload aliases the reader's buffers and is valid only until the next
// call to Reader.Next.
//
// A few layer-2 protocols matter without IP (PROFINET DCP names and
// readdresses PLCs): their frames are returned too, with EtherType set,
// Src and Dst invalid, Proto and ports zero, and Payload the frame after
// its EtherType and VLAN tags (Ethernet padding included).
type Packet struct {
	TS       time.Time
	Src, Dst netip.Addr
	// For TCP and UDP the ports; for ICMP/ICMPv6, like Zeek, SrcPort is the
	// ICMP type and DstPort the code.
	SrcPort, DstPort uint16
	Proto            uint8 // IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...

	// TCP only.
	TCPFlags uint8 // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20
	Seq, Ack uint32

	// IPLen is the IP packet length from its header (what Zeek counts as ip_bytes).
	IPLen int
	// PayloadLen is the transport payload length the headers claim; Payload
	// may be shorter when the capture's snap length cut the packet.
	PayloadLen int
	Payload    []byte

	SrcMAC, DstMAC [6]byte
	HasMAC         bool
	VLAN           uint16 // innermost VLAN id, 0 when none
	Tunnel         string // outermost tunnel removed: "gre", "erspan", "vxlan", "teredo", "ipip", ""

	// EtherType is non-zero only for layer-2 frames (EtherTypePROFINET);
	// IP packets leave it 0 whatever carried them. PayloadLen and IPLen are
	// then both the length of Payload.
	EtherType uint16

	// Input is the capture file (or interface) the packet came from.
	Input string
}

// EtherTypePROFINET is the one EtherType whose frames are returned without
// IP: PROFINET (DCP, and the cyclic real-time data that shares it).
const EtherTypePROFINET = 0x8892

// TCP flag bits.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
)
