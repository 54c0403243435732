package auditfwd

import (
	"strconv"
	"strings"
	"time"
)

// RFC 5424 section 6: PRI is facility*8+severity. Facility 13 is "log
// audit"; entries are informational (6), checkpoints notices (5), so a
// collector can route them apart.
const (
	facilityLogAudit = 13
	sevNotice        = 5
	sevInfo          = 6
	appName          = "clinicgate"
)

// message is one RFC 5424 SYSLOG-MSG:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
//
// with no structured data (NILVALUE): the record in MSG carries every
// field, so a collector that keeps only MSG (rsyslog's default file
// format does) keeps all of it. msg must be ASCII (audit.EntryRecord).
func message(sev int, at time.Time, host string, pid int, msgID, msg string) []byte {
	var b strings.Builder
	b.Grow(64 + len(host) + len(msg))
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(facilityLogAudit*8 + sev))
	b.WriteString(">1 ")
	// TIME-SECFRAC allows six digits at most (RFC 5424 6.2.3).
	b.WriteString(at.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte(' ')
	b.WriteString(header(host, 255))
	b.WriteByte(' ')
	b.WriteString(appName)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(pid))
	b.WriteByte(' ')
	b.WriteString(header(msgID, 32))
	b.WriteString(" - ")
	b.WriteString(msg)
	return []byte(b.String())
}

// header makes s a valid header field: PRINTUSASCII (33-126), at most n
// characters, NILVALUE when empty.
func header(s string, n int) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < n; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// frame is RFC 5425's octet-counting framing: MSG-LEN SP SYSLOG-MSG.
func frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+8)
	out = strconv.AppendInt(out, int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}
