//go:build !unix

package appservice

// restrictNewFiles has no umask to set outside Unix; the gateway still
// creates its database and registration files with mode 0600.
func restrictNewFiles() {}
