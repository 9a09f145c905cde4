package dlp

import "strings"

// Mask hides the middle of an identifier so that an analyst can still
// correlate two reports of the same value (and see the owner or airline)
// without the tool itself leaking it: OOLU4293959 -> OOLU****959,
// 933-34099074 -> 933-****9074. UN/LOCODEs are public place codes and stay
// as they are; HS codes keep their 4-digit heading. Separators are kept.
func Mask(typ, value string) string {
	keepHead, keepTail := 2, 2
	switch typ {
	case TypeUNLocode:
		return value
	case TypeContainer:
		keepHead, keepTail = 4, 3
	case TypeAWB:
		keepHead, keepTail = 4, 4
	case TypeIMO:
		keepHead, keepTail = 2, 1
	case TypeSSCC:
		keepHead, keepTail = 3, 3
	case TypeULD:
		keepHead, keepTail = 3, 2
	case TypeHS:
		keepHead, keepTail = 4, 0
	case TypeEORI:
		keepHead, keepTail = 2, 3
	}
	n := len(value)
	// Whatever the type, at least four characters are hidden.
	for keepHead+keepTail > n-4 && keepHead+keepTail > 0 {
		if keepTail > 0 && keepTail >= keepHead/2 {
			keepTail--
		} else {
			keepHead--
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for i := 0; i < n; i++ {
		c := value[i]
		if i < keepHead || i >= n-keepTail || !isAlnum(c) {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('*')
		}
	}
	return sb.String()
}
