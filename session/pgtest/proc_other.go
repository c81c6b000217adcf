//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs a child as owner (when set).
func sysProcAttr(owner *account) *syscall.SysProcAttr {
	if owner == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: owner.uid, Gid: owner.gid}}
}
