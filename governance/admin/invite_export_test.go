package admin

// SetInviteProgressEvery makes a department's run post a progress notice
// every n invitations, until the returned function restores the default.
func SetInviteProgressEvery(n int) (restore func()) {
	old := progressEvery
	progressEvery = n
	return func() { progressEvery = old }
}
