package auditfwd

import (
	"net"
	"syscall"
	"unsafe"
)

// unacked returns how many bytes written to c the peer's TCP has not yet
// acknowledged (SIOCOUTQ, which Linux numbers as TIOCOUTQ). RFC 5425 has
// no application acknowledgement; this is the nearest thing: an entry is
// counted as delivered once the collector's kernel has it.
func unacked(c net.Conn) (int, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int32
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(n), true
}
