package osssign

import "time"

// The signing routes write three fixed time layouts, always in UTC, on
// every request. These appenders write them without time.AppendFormat's
// layout parsing; timefmt_test.go checks them against it.

// AppendUTCBasic appends t in UTC as 20060102T150405Z (V4's x-oss-date).
func AppendUTCBasic(b []byte, t time.Time) []byte {
	y, mo, d, h, mi, s := utcParts(t)
	b = appendDigits(b, y, 4)
	b = appendDigits(b, mo, 2)
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = appendDigits(b, mi, 2)
	b = appendDigits(b, s, 2)
	return append(b, 'Z')
}

// AppendUTCRFC3339 appends t in UTC as 2006-01-02T15:04:05Z.
func AppendUTCRFC3339(b []byte, t time.Time) []byte {
	y, mo, d, h, mi, s := utcParts(t)
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, mo, 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, s, 2)
	return append(b, 'Z')
}

// AppendUTCMillis appends t in UTC as 2006-01-02T15:04:05.000Z (a policy's
// expiration).
func AppendUTCMillis(b []byte, t time.Time) []byte {
	b = AppendUTCRFC3339(b, t)
	b = b[:len(b)-1]
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/int(time.Millisecond), 3)
	return append(b, 'Z')
}

func utcParts(t time.Time) (year, month, day, hour, min, sec int) {
	t = t.UTC()
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return y, int(m), d, h, mi, s
}

// appendDigits appends v, zero-padded to width digits; a year outside
// 0–9999 falls back to its full decimal form, as time.Format writes it.
func appendDigits(b []byte, v, width int) []byte {
	if v < 0 || (width == 4 && v > 9999) {
		return time.Date(v, 1, 1, 0, 0, 0, 0, time.UTC).AppendFormat(b, "2006")
	}
	var buf [4]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}
