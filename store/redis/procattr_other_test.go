//go:build !linux

package redis

import "syscall"

// childAttr has no parent-death signal outside Linux; the tests' cleanup
// stops the servers they start.
func childAttr() *syscall.SysProcAttr { return nil }
