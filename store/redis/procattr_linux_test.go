package redis

import "syscall"

// childAttr makes a server this test binary starts die with it, even when
// the binary crashes before its cleanup runs.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
