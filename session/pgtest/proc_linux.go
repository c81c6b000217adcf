package pgtest

import "syscall"

// sysProcAttr runs a child as owner (when set) and has the kernel stop it if the test binary
// dies without cleaning up (a timeout, a crash): SIGINT is PostgreSQL's fast shutdown.
func sysProcAttr(owner *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if owner != nil {
		attr.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid}
	}
	return attr
}
