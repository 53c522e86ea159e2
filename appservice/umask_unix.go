//go:build unix

package appservice

import "syscall"

// restrictNewFiles makes every file and directory the process creates from
// now on private to its user (umask 077): log files, configs, registrations
// and SQLite's files, whoever creates them.
func restrictNewFiles() {
	syscall.Umask(0o077)
}
