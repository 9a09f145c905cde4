package dlp

// Check-digit algorithms. Each takes the identifier's characters already
// split from separators and returns whether the last character is right.
// They never index past what the callers' format checks guarantee.

// iso6346Letter maps A..Z to the ISO 6346 equivalent values: 10 upwards,
// skipping multiples of 11 so that a letter never weighs like a carry.
var iso6346Letter = func() (t [26]int) {
	v := 10
	for i := range t {
		if v%11 == 0 {
			v++
		}
		t[i] = v
		v++
	}
	return
}()

// iso6346Check computes the check digit of the 10 characters owner code
// (3 letters), category (U, J or Z) and 6-digit serial. ISO 6346 takes the
// remainder 10 as 0, which is why serials giving 10 are avoided in practice.
func iso6346Check(s []byte) int {
	sum, w := 0, 1
	for i := 0; i < 10; i++ {
		c := s[i]
		var v int
		if c >= 'A' && c <= 'Z' {
			v = iso6346Letter[c-'A']
		} else {
			v = int(c - '0')
		}
		sum += v * w
		w *= 2
	}
	return sum % 11 % 10
}

// awbCheck reports whether the 8-digit serial (7 digits + check) is valid:
// IATA air waybills carry serial mod 7 as the eighth digit.
func awbCheck(serial []byte) bool {
	n := 0
	for _, c := range serial[:7] {
		n = n*10 + int(c-'0')
	}
	return n%7 == int(serial[7]-'0')
}

// imoCheck validates a 7-digit IMO ship number: digits weighted 7..2, sum
// mod 10 is the last digit.
func imoCheck(d []byte) bool {
	sum := 0
	for i := 0; i < 6; i++ {
		sum += int(d[i]-'0') * (7 - i)
	}
	return sum%10 == int(d[6]-'0')
}

// gs1Check validates a GS1 key (SSCC, GTIN) with the mod-10 check digit:
// weights 3 and 1 alternate from the digit next to the check digit.
func gs1Check(d []byte) bool {
	sum, n := 0, len(d)
	for i := n - 2; i >= 0; i-- {
		v := int(d[i] - '0')
		if (n-2-i)%2 == 0 {
			v *= 3
		}
		sum += v
	}
	return (10-sum%10)%10 == int(d[n-1]-'0')
}

// sameDigits reports whether every digit is the same: 0000000, 1111111 are
// placeholders, not identifiers, whatever their check digit says.
func sameDigits(d []byte) bool {
	for _, c := range d[1:] {
		if c != d[0] {
			return false
		}
	}
	return true
}

// sequential reports 1234567-style serials, another favourite placeholder.
func sequential(d []byte) bool {
	for i := 1; i < len(d); i++ {
		if d[i] != d[i-1]+1 && !(d[i-1] == '9' && d[i] == '0') {
			return false
		}
	}
	return true
}

// ContainerCheckDigit returns the ISO 6346 check digit of the first ten
// characters of s (owner code, category, serial), or -1 when they are not
// three letters, U/J/Z and six digits.
func ContainerCheckDigit(s string) int {
	if len(s) < 10 || !allUpper([]byte(s[:4])) || !allDigits([]byte(s[4:10])) {
		return -1
	}
	switch s[3] {
	case 'U', 'J', 'Z':
		return iso6346Check([]byte(s))
	}
	return -1
}

// AWBCheckDigit returns the check digit of a 7-digit air waybill serial
// (serial mod 7), or -1 when s is not 7 digits.
func AWBCheckDigit(s string) int {
	if len(s) != 7 || !allDigits([]byte(s)) {
		return -1
	}
	n := 0
	for _, c := range []byte(s) {
		n = n*10 + int(c-'0')
	}
	return n % 7
}
